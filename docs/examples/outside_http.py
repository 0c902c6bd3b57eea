"""Codecs without HTTP: a job goes on a queue as MessagePack and comes back as a model."""

import queue
from datetime import UTC, datetime
from uuid import UUID

from pydantic import BaseModel, TypeAdapter, ValidationError

from fastapi_serdes import DecodeError, MsgPackCodec


class Job(BaseModel):
    id: UUID
    kind: str
    created_at: datetime
    payload: bytes
    attempts: int = 0


JOB = TypeAdapter(Job)  # build once, reuse for every message


def main() -> None:
    codec = MsgPackCodec()
    jobs: queue.Queue[bytes] = queue.Queue()

    job = Job(
        id=UUID("6f1c2a7e-1d2b-4c39-9a57-0c7f3b1e9d10"),
        kind="thumbnail",
        created_at=datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
        payload=b"\x89PNG\r\n",
    )
    jobs.put(codec.encode(job, JOB))

    # The worker side: bytes in, a validated Job out.
    received = codec.decode(jobs.get(), JOB)
    assert received == job
    print(received)

    # Without an adapter, decode gives plain Python objects (the UUID and datetime as strings).
    print(codec.decode(codec.encode(job, JOB)))

    # Bytes that are not MessagePack, and data that does not fit the model.
    try:
        codec.decode(b"\xc1", JOB)
    except DecodeError as exc:
        print("DecodeError:", exc)
    try:
        codec.decode(codec.encode({"id": "not-a-uuid"}), JOB)
    except ValidationError as exc:
        print("ValidationError:", exc.error_count(), "errors")


if __name__ == "__main__":
    main()
