"""Ruche's Lambda functions: a table of contents of thin handlers. All logic lives in chalicelib/."""

from __future__ import annotations

from chalice import Chalice

app = Chalice(app_name="ruche")


@app.route("/health", methods=["GET"])
def health() -> dict[str, str]:
    return {"status": "ok"}
