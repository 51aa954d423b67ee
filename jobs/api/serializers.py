from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .. import services
from ..models import Artifact, Job, Model, Task


class TaskSerializer(serializers.ModelSerializer):
    status_label = serializers.CharField(source="get_status_display", read_only=True)
    reused_from_job = serializers.SerializerMethodField()

    class Meta:
        model = Task
        fields = ["id", "node", "site", "party", "role", "component", "version", "status", "status_label", "attempt",
                  "progress", "stage", "metrics", "error", "outputs", "reused_from_job", "queued_at", "started_at",
                  "finished_at"]
        read_only_fields = fields

    def get_reused_from_job(self, obj) -> str | None:
        if obj.reused_from_id:
            return str(obj.reused_from.job_id)
        return obj.reused_job or None


class GateSerializer(serializers.Serializer):
    node = serializers.CharField(help_text="The node after which the job waits.")
    overlap = serializers.IntegerField(allow_null=True,
                                       help_text="The overlap size the PSI reported (both sites learn it).")
    paused_at = serializers.DateTimeField()
    decider = serializers.CharField(help_text="initiator or partner_admin, as both sites agreed for this job.")
    decider_party = serializers.CharField(help_text="The party id of the site whose people decide.")
    can_decide = serializers.BooleanField(help_text="Whether the user asking may continue or stop the job now.")


class JobSerializer(serializers.ModelSerializer):
    project = serializers.UUIDField(source="project_id", read_only=True)
    status_label = serializers.CharField(source="get_status_display", read_only=True)
    created_by = serializers.SerializerMethodField()
    tasks = TaskSerializer(many=True, read_only=True)
    rerun_of = serializers.UUIDField(source="rerun_of_id", read_only=True, allow_null=True)
    refusal = serializers.SerializerMethodField(help_text="Who refused the job and why, in plain words (refused jobs).")
    pause_after = serializers.SerializerMethodField(help_text="The gated nodes of the spec.")
    gate = serializers.SerializerMethodField(help_text="The gate a paused job waits at; null unless paused.")

    class Meta:
        model = Job
        fields = ["id", "project", "name", "template", "initiator", "created_by", "status", "status_label", "attempt",
                  "error", "failed_party", "failed_node", "refused_by", "refusal", "pause_after", "gate_decider",
                  "gates_passed", "gate", "rerun_of", "spec", "tasks", "created_at", "accepted_at", "finished_at"]
        read_only_fields = fields

    def get_created_by(self, obj) -> str:
        return obj.created_by.get_username() if obj.created_by_id else obj.created_by_name

    def get_refusal(self, obj) -> str:
        return services.refusal_words(obj)

    def get_pause_after(self, obj) -> list[str]:
        return list((obj.spec or {}).get("pause_after") or [])

    @extend_schema_field(GateSerializer(allow_null=True))
    def get_gate(self, obj):
        request = self.context.get("request")
        gate = services.gate_summary(obj, getattr(request, "user", None))
        return GateSerializer(gate).data if gate is not None else None


class JobCreateSerializer(serializers.Serializer):
    project = serializers.UUIDField()
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    spec = serializers.JSONField(required=False, help_text="A job spec (format fedweb-job/1); or give a template.")
    template = serializers.CharField(required=False, allow_blank=True, default="",
                                     help_text="psi, lr, secureboost or score: builds the spec from the tables below.")
    our_table = serializers.UUIDField(required=False, help_text="With a template: our dataset.")
    partner_table = serializers.CharField(required=False, help_text="With a template: the partner's table id.")
    options = serializers.DictField(required=False, default=dict, help_text="With a template: its options.")

    def validate(self, data):
        if not data.get("spec") and not data.get("template"):
            raise serializers.ValidationError("Give a spec or a template.")
        if data.get("template") and not (data.get("our_table") and data.get("partner_table")):
            raise serializers.ValidationError("A template needs our_table and partner_table.")
        return data


class RerunSerializer(serializers.Serializer):
    changes = serializers.DictField(
        help_text='Per node, the parameters to change: {"lr": {"common": {"learning_rate": 0.05}}}.')


class RefuseSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class GateStopSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000,
                                   help_text="Why the job stops here; both sites show it with who stopped it.")


class TemplateSerializer(serializers.Serializer):
    name = serializers.CharField()
    title = serializers.CharField()
    description = serializers.CharField()
    options = serializers.DictField()


class LogSerializer(serializers.Serializer):
    node = serializers.CharField()
    log = serializers.CharField()


class ArtifactSerializer(serializers.ModelSerializer):
    class Meta:
        model = Artifact
        fields = ["id", "kind", "size_bytes", "rows", "created_at"]
        read_only_fields = fields


class ModelSerializer(serializers.ModelSerializer):
    project = serializers.UUIDField(source="project_id", read_only=True)
    job = serializers.UUIDField(source="job_id", read_only=True, allow_null=True)
    artifact = serializers.CharField(source="artifact_id", read_only=True)
    transform = serializers.CharField(source="transform_id", read_only=True, allow_null=True)
    status = serializers.CharField(read_only=True)
    published = serializers.BooleanField(source="is_published", read_only=True)
    serving_table = serializers.SerializerMethodField()

    class Meta:
        model = Model
        fields = ["id", "project", "name", "number", "status", "published", "job", "node", "component", "version",
                  "role", "origin", "params", "metrics", "artifact", "transform", "scorecard", "consent_here_at",
                  "consent_here_by", "consent_partner_at", "consent_partner_by", "archived_at", "serving_table",
                  "created_at"]
        read_only_fields = fields

    def get_serving_table(self, model) -> str | None:
        serving = getattr(model, "serving", None)
        return str(serving.dataset_id) if serving is not None else None


class UnpublishSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500)


class ServingTableSerializer(serializers.Serializer):
    dataset = serializers.UUIDField()


class ScoreRequestSerializer(serializers.Serializer):
    """One of ``id``, ``ids`` or ``rows`` (checked by the service, which words every error)."""

    id = serializers.CharField(required=False, help_text="One id to score.")
    ids = serializers.ListField(child=serializers.CharField(), required=False, help_text="Several ids to score.")
    rows = serializers.ListField(child=serializers.DictField(), required=False,
                                 help_text="This site's rows (an \"id\" and the model's features), instead of a lookup "
                                           "in the registered serving table.")


class ScoreSerializer(serializers.Serializer):
    id = serializers.CharField()
    probability = serializers.FloatField()
    points = serializers.FloatField(required=False)


class UnknownIdSerializer(serializers.Serializer):
    id = serializers.CharField()
    reason = serializers.CharField()


class ScoreResponseSerializer(serializers.Serializer):
    request_id = serializers.UUIDField()
    model = serializers.UUIDField()
    name = serializers.CharField()
    version = serializers.IntegerField()
    scores = ScoreSerializer(many=True)
    unknown = UnknownIdSerializer(many=True)


class ReconciliationLineSerializer(serializers.Serializer):
    request_id = serializers.CharField()
    at = serializers.CharField(allow_null=True)
    model_number = serializers.IntegerField(allow_null=True)
    ids = serializers.IntegerField(allow_null=True)
    our_outcome = serializers.CharField(allow_blank=True)
    our_scored = serializers.IntegerField(allow_null=True)
    partner_outcome = serializers.CharField(allow_blank=True)
    partner_scored = serializers.IntegerField(allow_null=True)
    status = serializers.ChoiceField(choices=["matched", "mismatch", "only_here", "only_there"])
    why = serializers.CharField(allow_blank=True)


class ReconciliationSerializer(serializers.Serializer):
    day = serializers.DateField()
    model_id = serializers.CharField()
    ours = serializers.IntegerField(help_text="Requests this site logged.")
    theirs = serializers.IntegerField(help_text="Requests the partner logged.")
    matched = serializers.IntegerField()
    balanced = serializers.BooleanField()
    partner_error = serializers.CharField(allow_blank=True)
    partner_time_zone = serializers.CharField(allow_blank=True)
    problems = ReconciliationLineSerializer(many=True)
