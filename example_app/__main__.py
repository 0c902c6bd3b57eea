"""``python -m example_app``: serve the example on http://127.0.0.1:8000."""

import uvicorn

if __name__ == "__main__":
    uvicorn.run("example_app.main:app", host="127.0.0.1", port=8000)
