from rest_framework import serializers

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


class JobSerializer(serializers.ModelSerializer):
    project = serializers.UUIDField(source="project_id", read_only=True)
    status_label = serializers.CharField(source="get_status_display", read_only=True)
    created_by = serializers.SerializerMethodField()
    tasks = TaskSerializer(many=True, read_only=True)
    rerun_of = serializers.UUIDField(source="rerun_of_id", read_only=True, allow_null=True)

    class Meta:
        model = Job
        fields = ["id", "project", "name", "template", "initiator", "created_by", "status", "status_label", "attempt",
                  "error", "failed_party", "failed_node", "rerun_of", "spec", "tasks", "created_at", "accepted_at",
                  "finished_at"]
        read_only_fields = fields

    def get_created_by(self, obj) -> str:
        return obj.created_by.get_username() if obj.created_by_id else obj.created_by_name


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
    job = serializers.UUIDField(source="job_id", read_only=True)
    artifact = serializers.CharField(source="artifact_id", read_only=True)

    class Meta:
        model = Model
        fields = ["id", "project", "job", "node", "component", "version", "role", "params", "metrics", "artifact",
                  "created_at"]
        read_only_fields = fields
