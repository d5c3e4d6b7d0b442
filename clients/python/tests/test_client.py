"""The client against a real `fresco serve`: upload through a signed URL, submit with an
idempotency key, wait with progress, read logs, list, cancel, retry, and the errors."""

import uuid

import pytest

from fresco_client import Client, FrescoError, Job


@pytest.fixture
def fresco(served):
    return Client(served.base, token=served.token, timeout=120)


def test_upload_submit_wait_and_read_the_log(fresco, served, clip):
    name = fresco.upload(clip)
    stored = served.dir / "data" / name
    assert stored.is_file(), f"{name} was not stored under the data store ({stored})"
    assert stored.read_bytes() == clip.read_bytes()

    key = f"py-{uuid.uuid4()}"
    job = fresco.submit(name, "styled.mp4", style="vintage", chunk_frames=10, idempotency_key=key)
    assert isinstance(job, Job) and job.state in ("queued", "running")
    assert job.temporal is False
    request_id = fresco.last_request_id
    assert request_id, "no x-request-id on the submission's answer"
    again = fresco.submit(name, "styled.mp4", style="vintage", chunk_frames=10, idempotency_key=key)
    assert again.id == job.id, "the same Idempotency-Key made a second job"

    seen = []
    done = fresco.wait(job, progress=lambda j: seen.append(j.progress), interval=0.1, timeout=300)
    assert done.state == "succeeded", f"{done}\n{served.log_text()}"
    assert done.progress == 1.0 and done.frames_done == 30 and done.chunks_done == 3
    assert seen and seen[-1] == 1.0
    assert seen == sorted(seen), f"progress went backwards: {seen}"
    assert (served.dir / "data" / "styled.mp4").stat().st_size > 0

    # The submission's line names its request id (a worker may have claimed the plan first).
    messages = [line.message for line in fresco.logs(job).lines]
    assert f"submitted by py-client (request {request_id})" in messages, messages
    # Reading on from the last line finds nothing new.
    page = fresco.logs(job)
    assert fresco.logs(job, after=page.next).lines == []

    listed = [j.id for j in fresco.list(state="succeeded", limit=50).jobs]
    assert job.id in listed
    assert job.id in [j.id for j in fresco.jobs(page_size=1)]


def test_cancel_then_retry(fresco, served, clip):
    name = fresco.upload(clip, name="to-cancel.mp4")
    job = fresco.submit(name, "canceled.mp4", style="vintage", chunk_frames=5)
    canceled = fresco.cancel(job)
    assert canceled.state == "canceled"
    assert fresco.get(job).state == "canceled"
    retried = fresco.retry(canceled)
    assert retried.state in ("queued", "running")
    done = fresco.wait(retried, interval=0.1, timeout=300)
    assert done.state == "succeeded", f"{done}\n{served.log_text()}"
    # A finished job cannot be canceled: the server's code comes through.
    with pytest.raises(FrescoError) as refused:
        fresco.cancel(done)
    assert (refused.value.status, refused.value.code) == (409, "job-finished")


def test_a_temporal_job_says_so(fresco, served, clip):
    name = fresco.upload(clip, name="to-steady.mp4")
    job = fresco.submit(name, "steady.mp4", style="vintage", temporal=True)
    assert job.temporal is True and fresco.get(job).temporal is True
    fresco.cancel(job)
    # The server's check comes through: a records output cannot be steadied.
    with pytest.raises(FrescoError) as refused:
        fresco.submit(name, "rows.jsonl", style="vintage", temporal=True)
    assert (refused.value.status, refused.value.code) == (422, "temporal-not-applicable")


def test_errors_carry_status_code_and_request_id(fresco, served):
    with pytest.raises(FrescoError) as missing:
        fresco.get("no-such-job")
    assert (missing.value.status, missing.value.code) == (404, "job-not-found")
    assert missing.value.request_id, "an error without its x-request-id"

    with pytest.raises(FrescoError) as bad_input:
        fresco.submit("absent.mp4", "out.mp4", style="vintage")
    assert (bad_input.value.status, bad_input.value.code) == (422, "input-missing")

    with pytest.raises(FrescoError) as unknown_style:
        fresco.submit("absent.mp4", "out.mp4", style="no-such-style")
    assert unknown_style.value.status in (400, 422) and unknown_style.value.code

    with pytest.raises(FrescoError) as not_a_video:
        fresco.upload_grant("notes.txt")
    assert not_a_video.value.status in (400, 422) and not_a_video.value.code

    stranger = Client(served.base, token="fresco_not-a-real-token")
    with pytest.raises(FrescoError) as refused:
        stranger.list()
    assert refused.value.status == 401 and refused.value.code == "invalid-token"

    nowhere = Client("http://127.0.0.1:9", token="x", timeout=5)
    with pytest.raises(FrescoError) as unreachable:
        nowhere.list()
    assert (unreachable.value.status, unreachable.value.code) == (0, "unreachable")


def test_wait_gives_up_after_its_timeout(fresco, clip):
    name = fresco.upload(clip, name="slow.mp4")
    job = fresco.submit(name, "slow-out.mp4", style="vintage", chunk_frames=5, priority=-5)
    with pytest.raises(TimeoutError):
        fresco.wait(job, interval=0.05, timeout=0.01)
    try:
        fresco.cancel(job)
    except FrescoError as e:  # it may have finished meanwhile
        assert e.code == "job-finished"
