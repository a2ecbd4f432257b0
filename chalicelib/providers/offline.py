"""The `offline` provider: deterministic, no network, honest about being a stand-in.

The engine composes its own deterministic answer for every call (the plan's draft for
generation, a heuristic JSON verdict for structured tasks) and passes it as
`request.offline_answer`; this provider returns it. It never invents text of its own.
"""

from __future__ import annotations

from chalicelib.providers.llm import LlmRequest, LlmResponse, ProviderError, estimate_tokens


class OfflineLlm:
    """An LlmProvider that answers request.offline_answer. Never fails for any other reason."""

    name = "offline"
    model = "offline"

    def complete(self, request: LlmRequest) -> LlmResponse:
        """The engine's stand-in answer; tokens estimated as characters / 4.

        Raises ProviderError when the request carries no offline_answer (an engine bug: every
        call site must provide one).
        """
        if request.offline_answer is None:
            raise ProviderError(
                f"offline provider: the {request.task} request carries no offline_answer",
                provider=self.name, task=request.task,
            )
        prompt = "".join(message.content for message in request.messages)
        return LlmResponse(
            text=request.offline_answer,
            model=self.model,
            prompt_tokens=estimate_tokens(prompt),
            completion_tokens=estimate_tokens(request.offline_answer),
        )
