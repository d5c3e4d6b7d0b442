"""fresco's Python client: submit, follow, cancel and retry jobs; upload through signed URLs.

>>> from fresco_client import Client
>>> fresco = Client("http://127.0.0.1:8080", token="...")
>>> job = fresco.submit(input=fresco.upload("clip.mp4"), output="out.mp4", style="vintage")
>>> fresco.wait(job, progress=lambda j: print(f"{j.progress:.0%}")).state
'succeeded'
"""

from .client import IDEMPOTENCY_KEY, REQUEST_ID, ROUTES, SUBMIT_FIELDS, Client, FrescoError
from .models import (
    MODELS,
    TERMINAL_STATES,
    Job,
    JobPage,
    LogLine,
    LogPage,
    UploadedObject,
    UploadGrant,
)

__all__ = [
    "Client", "FrescoError", "Job", "JobPage", "LogLine", "LogPage", "UploadGrant",
    "UploadedObject", "MODELS", "ROUTES", "SUBMIT_FIELDS", "TERMINAL_STATES",
    "IDEMPOTENCY_KEY", "REQUEST_ID",
]
