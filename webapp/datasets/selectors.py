"""Reads for datasets, always scoped to one user."""

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from webapp.datasets.models import Dataset


def dataset_list(*, user) -> QuerySet[Dataset]:
    return Dataset.objects.filter(owner=user)


def get_dataset_for_user(*, user, pk: int) -> Dataset:
    """The user's dataset, or 404 (also for other users' datasets, so ids leak nothing)."""
    return get_object_or_404(Dataset, pk=pk, owner=user)
