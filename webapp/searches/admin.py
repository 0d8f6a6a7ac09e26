from django.contrib import admin

from webapp.searches.models import SearchJob, Trial


class TrialInline(admin.TabularInline):
    model = Trial
    extra = 0
    can_delete = False
    fields = ["number", "status", "score", "params", "flops", "latency_ms", "train_seconds", "on_front"]
    readonly_fields = fields
    show_change_link = True


@admin.register(SearchJob)
class SearchJobAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "owner",
        "dataset",
        "target",
        "task",
        "strategy",
        "status",
        "progress",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status", "task", "strategy", "created_at"]
    search_fields = ["target", "owner__username", "dataset__name", "error"]
    readonly_fields = ["created_at", "started_at", "finished_at", "preprocessing"]
    inlines = [TrialInline]


@admin.register(Trial)
class TrialAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "job",
        "number",
        "status",
        "score",
        "params",
        "flops",
        "latency_ms",
        "train_seconds",
        "on_front",
    ]
    list_filter = ["status", "on_front", "job__task"]
    search_fields = ["job__id", "arch_hash", "message"]
    readonly_fields = ["created_at"]
