"""The REST API under /api/v1/ (django-ninja): personal tokens, datasets, searches, trials, bundles
and predictions, with the pages' ownership, validation, messages and quotas."""
