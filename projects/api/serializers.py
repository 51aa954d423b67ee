from django.contrib.auth import get_user_model
from rest_framework import serializers

from fedweb.accounts.models import Role

from ..models import GateDecider, Partner, Project, ProjectEvent, ProjectMember, ProjectTable, RemoteTable


class PartnerSerializer(serializers.ModelSerializer):
    pinned_certificates = serializers.SerializerMethodField()

    class Meta:
        model = Partner
        fields = ["id", "party_id", "name", "proxy_address", "is_active", "created_at", "pinned_certificates"]
        read_only_fields = fields

    def get_pinned_certificates(self, obj) -> list[dict]:
        return [{"fingerprint": c.fingerprint, "not_after": c.not_after} for c in obj.pinned()]


class BundleImportSerializer(serializers.Serializer):
    bundle = serializers.JSONField(help_text="The partner's site bundle, as exported by its admin.")


class BundleExportSerializer(serializers.Serializer):
    proxy_address = serializers.CharField(help_text="host:port at which partners reach this site's proxy.")


class ConnectionStepSerializer(serializers.Serializer):
    step = serializers.CharField()
    ok = serializers.BooleanField()
    detail = serializers.CharField(allow_blank=True)


class ConnectionReportSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    summary = serializers.CharField()
    steps = ConnectionStepSerializer(many=True)


class ProjectSerializer(serializers.ModelSerializer):
    partner = serializers.CharField(source="partner.party_id", read_only=True)
    status_label = serializers.CharField(source="get_status_display", read_only=True)
    we_hold_labels = serializers.BooleanField(read_only=True)

    class Meta:
        model = Project
        fields = [
            "id", "name", "purpose", "partner", "initiator", "label_holder", "we_hold_labels", "status",
            "status_label", "status_changed_by", "suspended_here", "suspended_by_partner", "decision_comment", "token_version",
            "approve_partner_jobs", "gate_decider", "auto_confirm_models", "created_at", "updated_at",
        ]
        read_only_fields = fields


class JobSettingsSerializer(serializers.Serializer):
    approve_partner_jobs = serializers.BooleanField(
        required=False, help_text="The partner's jobs wait for a site admin's approval here before they run.")
    gate_decider = serializers.ChoiceField(
        choices=GateDecider.choices, required=False,
        help_text="Who decides whether a job paused at a gate goes on: initiator (someone who can run jobs at the "
                  "site that started it) or partner_admin (a site admin of the other site). Both sites must choose "
                  "the same.")
    auto_confirm_models = serializers.BooleanField(
        required=False, help_text="The partner's requests to publish a model for scoring are confirmed here at once "
                                  "(otherwise a site admin of this site confirms each).")


class ProjectCreateSerializer(serializers.Serializer):
    partner = serializers.SlugRelatedField(slug_field="party_id", queryset=Partner.objects.filter(is_active=True))
    name = serializers.CharField(max_length=200)
    purpose = serializers.CharField()
    we_hold_labels = serializers.BooleanField(help_text="True if this site holds the labels (is the guest).")


class CommentSerializer(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, default="")


class PolicySerializer(serializers.Serializer):
    runs_per_day = serializers.IntegerField(min_value=1, required=False)
    min_set_size = serializers.IntegerField(min_value=0, required=False)
    max_set_size = serializers.IntegerField(min_value=0, required=False)
    max_size_ratio = serializers.FloatField(min_value=1.0, required=False)
    min_overlap = serializers.IntegerField(min_value=0, required=False)
    partner_may_receive = serializers.BooleanField(required=False)


class TableAuthoriseSerializer(serializers.Serializer):
    dataset = serializers.UUIDField()
    expires_at = serializers.DateTimeField(required=False, allow_null=True)
    policy = PolicySerializer(required=False)


class ProjectTableSerializer(serializers.ModelSerializer):
    dataset = serializers.UUIDField(source="dataset_id", read_only=True)
    name = serializers.CharField(source="dataset.name", read_only=True)
    row_count = serializers.IntegerField(source="dataset.row_count", read_only=True)
    version = serializers.IntegerField(source="dataset.version", read_only=True,
                                       help_text="The version of the dataset this authorisation uses.")
    replaced_by = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True,
                                                     help_text="The authorisation that took its place when an admin "
                                                               "moved the project to another version.")
    policy = serializers.SerializerMethodField()
    is_live = serializers.BooleanField(read_only=True)

    class Meta:
        model = ProjectTable
        fields = ["id", "dataset", "name", "row_count", "version", "authorised_at", "expires_at", "revoked_at", "is_live",
                  "replaced_by", "policy"]
        read_only_fields = fields

    def get_policy(self, obj) -> dict:
        return obj.policy()


class TableVersionSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1, help_text="The ready version of the dataset to use instead.")


class RemoteTableSerializer(serializers.ModelSerializer):
    class Meta:
        model = RemoteTable
        fields = ["table_id", "name", "version", "row_count", "columns", "expires_at", "is_authorised", "replaced_by",
                  "partner_may_receive_intersection", "updated_at"]
        read_only_fields = fields


class ProjectEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = ProjectEvent
        fields = ["event_id", "type", "direction", "party", "actor_name", "summary", "created_at"]
        read_only_fields = fields


class ProjectMemberSerializer(serializers.ModelSerializer):
    user_id = serializers.IntegerField(source="user.pk", read_only=True)
    user = serializers.CharField(source="user.username", read_only=True)
    full_name = serializers.CharField(source="user.get_full_name", read_only=True)
    role = serializers.ChoiceField(source="user.role", choices=Role.choices, read_only=True)
    is_active = serializers.BooleanField(source="user.is_active", read_only=True)
    added_by = serializers.CharField(source="added_by.username", read_only=True, allow_null=True, default=None)

    class Meta:
        model = ProjectMember
        fields = ["user_id", "user", "full_name", "role", "is_active", "added_by", "added_at"]
        read_only_fields = fields


class MemberAddSerializer(serializers.Serializer):
    user = serializers.SlugRelatedField(
        slug_field="username", queryset=get_user_model().objects.all(),
        help_text="Username of the person who may see the project.",
    )
