"""``fvc serve``: the detector behind an authenticated HTTP service (FastAPI on uvicorn)."""
