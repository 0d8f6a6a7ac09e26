"""Events pushed to the job page over the channel layer (JSON shapes in DESIGN.md)."""

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from webapp.searches.models import SearchJob, Trial


def group_name(job_id: int) -> str:
    return f"search-{job_id}"


def status_payload(job: SearchJob) -> dict:
    return {
        "type": "status",
        "status": job.status,
        "progress": job.progress,
        "message": job.message,
        "error": job.error,
        "recommended": job.recommended_number,
    }


def trial_payload(trial: Trial, front: list[int]) -> dict:
    """One trial, plus the ids of every trial now on the front (a new trial can push others off)."""
    return {"type": "trial", "trial": trial.to_dict(), "front": front}


def snapshot_payload(job: SearchJob, trials: list[Trial]) -> dict:
    return {"type": "snapshot", "job": job.to_dict(), "trials": [trial.to_dict() for trial in trials]}


def send(job_id: int, payload: dict) -> None:
    """Push one event to every browser watching the job. Call it after the rows are committed."""
    async_to_sync(get_channel_layer().group_send)(group_name(job_id), {"type": "job.event", "payload": payload})
