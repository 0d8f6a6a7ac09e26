"""Staff views of every search: columns and filters to find a job, actions to manage it, and the
job's trials and Pareto plot on its page."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.db.models import Count, Max, Q
from django.template.response import TemplateResponse
from django.utils import timezone

from webapp.searches import services
from webapp.searches.models import PendingTrial, SearchJob, Trial


class TrialInline(admin.TabularInline):
    model = Trial
    extra = 0
    can_delete = False
    fields = [
        "number", "status", "score", "params", "flops", "latency_ms", "train_seconds", "on_front", "worker_host",
        "message",
    ]  # fmt: skip
    readonly_fields = fields
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


class PendingTrialInline(admin.TabularInline):
    """Trials of a spread-out search being trained (or waiting for a worker) right now."""

    model = PendingTrial
    extra = 0
    can_delete = False
    fields = ["number", "state", "queue", "attempt", "worker_host", "heartbeat_at", "created_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


class JobActionForm(ActionForm):
    reason = forms.CharField(required=False, label="Reason (for “mark failed”)", max_length=2000)


@admin.register(SearchJob)
class SearchJobAdmin(admin.ModelAdmin):
    list_display = [
        "id", "owner", "dataset", "status", "progress_percent", "strategy", "trials_summary", "best_score",
        "wall_time", "worker_host", "created_at", "started_at", "finished_at",
    ]  # fmt: skip
    list_filter = ["status", "owner", "strategy", "fidelity", "created_at"]
    date_hierarchy = "created_at"
    search_fields = ["owner__username", "dataset__name", "target", "error"]
    list_select_related = ["owner", "dataset"]
    readonly_fields = [
        "owner", "dataset", "status", "progress", "message", "error", "worker_host", "heartbeat_at", "rerun_of",
        "warm_start_from", "recommended_number", "smallest_number", "reference", "split_rows", "preprocessing",
        "n_inputs", "n_outputs", "created_at", "started_at",
        "finished_at", "parallel_trials", "trial_slots", "driver_step", "concluding",
    ]  # fmt: skip
    exclude = ["driver_state"]
    inlines = [PendingTrialInline, TrialInline]
    action_form = JobActionForm
    actions = ["cancel_jobs", "rerun_jobs", "mark_failed", "delete_with_files"]
    change_form_template = "admin/searches/searchjob/change_form.html"

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                trials_done=Count("trials", filter=Q(trials__status__in=Trial.WITH_MODEL)),
                trials_rejected=Count("trials", filter=Q(trials__status=Trial.Status.REJECTED)),
                trials_failed=Count("trials", filter=Q(trials__status=Trial.Status.FAILED)),
                best=Max("trials__score", filter=Q(trials__status=Trial.Status.COMPLETED)),
            )
        )

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # it would leave the job's files behind
        return actions

    @admin.display(description="progress", ordering="progress")
    def progress_percent(self, job):
        return f"{job.progress:.0%}"

    @admin.display(description="trials done / rejected / failed")
    def trials_summary(self, job):
        return f"{job.trials_done} / {job.trials_rejected} / {job.trials_failed}"

    @admin.display(description="best score", ordering="best")
    def best_score(self, job):
        return "–" if job.best is None else f"{job.best:.4f}"

    @admin.display(description="wall time")
    def wall_time(self, job):
        if job.started_at is None:
            return "–"
        seconds = ((job.finished_at or timezone.now()) - job.started_at).total_seconds()
        return f"{seconds:.0f} s"

    # Each action asks for the permission its effect needs: a view-only staff account is offered
    # none of them, and Django refuses a forged post of one it does not offer.
    @admin.action(description="Cancel the selected searches", permissions=["change"])
    def cancel_jobs(self, request, queryset):
        cancelled = sum(services.search_cancel(job=job) for job in queryset)
        self.message_user(request, f"Cancelled {cancelled} of {queryset.count()} searches (the rest had ended).")

    @admin.action(description="Re-run the selected searches (same settings and seed)", permissions=["rerun"])
    def rerun_jobs(self, request, queryset):
        reruns = [services.search_rerun(job=job) for job in queryset]
        self.message_user(request, "Queued " + ", ".join(f"#{job.pk}" for job in reruns) + ".")

    @admin.action(description="Mark the selected searches failed (give a reason)", permissions=["change"])
    def mark_failed(self, request, queryset):
        reason = request.POST.get("reason", "").strip()
        if not reason:
            self.message_user(request, "Give a reason: the owner sees it on the search page.", messages.ERROR)
            return
        marked = sum(services.search_mark_failed(job=job, reason=reason) for job in queryset)
        self.message_user(request, f"Marked {marked} searches failed (the rest had ended).")

    @admin.action(description="Delete the selected searches and their files", permissions=["delete"])
    def delete_with_files(self, request, queryset):
        if request.POST.get("post") != "yes":  # ask first, saying what goes: each search's trained models
            jobs = list(queryset.order_by("-pk"))
            context = {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": "Delete these searches and their files?",
                "jobs": jobs,
                "models": sum(job.trials_done for job in jobs),
                "active": sum(not job.is_ended for job in jobs),
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(request, "admin/searches/searchjob/delete_with_files.html", context)
        count = 0
        for job in queryset:
            services.search_delete(job=job)
            count += 1
        self.message_user(request, f"Deleted {count} searches and their files.")

    def has_rerun_permission(self, request):
        """A re-run queues a new search (outside the owner's quota) from an existing one: it needs
        both the add and the change permission (``has_add_permission`` is False for everyone here,
        since the admin has no form to start a job)."""
        return request.user.has_perms(["searches.add_searchjob", "searches.change_searchjob"])

    def delete_model(self, request, obj):
        services.search_delete(job=obj)

    def delete_queryset(self, request, queryset):
        for job in queryset:
            services.search_delete(job=job)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        extra_context = extra_context or {}
        if object_id:
            job = self.get_object(request, object_id)
            if job is not None:
                extra_context["plot_trials"] = [
                    {"number": t.number, "score": t.score, "params": t.params, "on_front": t.on_front}
                    for t in job.trials.filter(status__in=Trial.WITH_MODEL, score__isnull=False)
                ]
        return super().changeform_view(request, object_id, form_url, extra_context)

    def has_add_permission(self, request):
        return False  # jobs start from a dataset's page, where the form checks them


@admin.register(Trial)
class TrialAdmin(admin.ModelAdmin):
    list_display = [
        "id", "job", "number", "status", "score", "params", "flops", "latency_ms", "train_seconds", "on_front",
        "worker_host",
    ]  # fmt: skip
    list_filter = ["status", "on_front", "job__task", "worker_host"]
    search_fields = ["job__id", "arch_hash", "message"]
    readonly_fields = ["created_at"]
