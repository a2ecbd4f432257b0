from tests.api.harness import api

__all__ = ["api"]
