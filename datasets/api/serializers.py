from django.contrib.auth import get_user_model
from rest_framework import serializers

from ..models import ColumnType, Dataset, DatasetGrant
from ..services import DELIMITERS


class ColumnSerializer(serializers.Serializer):
    name = serializers.CharField()
    role = serializers.ChoiceField(choices=["id", "label", "feature", "ignored"])
    type = serializers.CharField(allow_blank=True)


class DatasetSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True)
    first_version = serializers.UUIDField(source="lineage_id", read_only=True,
                                          help_text="The id of version 1: the same for every version of a dataset.")
    uploaded_by = serializers.CharField(source="uploaded_by.username", read_only=True, allow_null=True, default=None)
    status_label = serializers.CharField(source="get_status_display", read_only=True)
    columns = ColumnSerializer(many=True, read_only=True)
    error = serializers.SerializerMethodField()

    class Meta:
        model = Dataset
        fields = [
            "id", "version", "first_version", "name", "description", "tags", "owner", "uploaded_by", "original_filename",
            "size_bytes", "sha256",
            "status", "status_label", "error", "encoding", "delimiter", "detected_encoding",
            "detected_delimiter", "id_column", "label_column", "columns", "row_count", "report",
            "created_at", "updated_at", "validated_at",
        ]
        read_only_fields = fields

    def get_error(self, obj) -> dict | None:
        if not obj.error_code:
            return None
        # The message in the request's language; ``error_message`` (English) stays on the model for logs.
        return {
            "code": obj.error_code,
            "message": obj.error_text,
            "line": obj.error_line,
            "column": obj.error_column or None,
        }


class DatasetUploadSerializer(serializers.Serializer):
    # Empty files are accepted here so they fail validation with the same clear
    # message as in the browser ("The file is empty").
    file = serializers.FileField(help_text="The CSV file.", allow_empty_file=True)
    name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    description = serializers.CharField(required=False, allow_blank=True)
    encoding = serializers.CharField(
        required=False, allow_blank=True, max_length=40,
        help_text="Leave empty to detect UTF-8 (with or without BOM) and GBK/GB18030; name any other encoding.",
    )
    delimiter = serializers.ChoiceField(
        choices=[(k, str(v)) for k, v in DELIMITERS.items()], required=False, allow_blank=True,
        help_text="Leave empty to detect.",
    )
    id_column = serializers.CharField(required=False, allow_blank=True, help_text="Leave empty to guess.")
    label_column = serializers.CharField(required=False, allow_blank=True, help_text="Leave empty to guess.")


class DatasetVersionUploadSerializer(serializers.Serializer):
    # Empty files fail validation with the same words as any upload (see above).
    file = serializers.FileField(help_text="The new CSV file: the same columns as the newest ready version.",
                                 allow_empty_file=True)
    encoding = serializers.CharField(required=False, allow_blank=True, max_length=40,
                                     help_text="Leave empty for the one asked for last time (or detection).")
    delimiter = serializers.ChoiceField(
        choices=[(k, str(v)) for k, v in DELIMITERS.items()], required=False, allow_blank=True,
        help_text="Leave empty for the one asked for last time (or detection).",
    )


class DatasetUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, max_length=200)
    description = serializers.CharField(required=False, allow_blank=True)
    tags = serializers.ListField(child=serializers.CharField(max_length=40), required=False, max_length=20)


class SchemaSerializer(serializers.Serializer):
    id_column = serializers.CharField()
    label_column = serializers.CharField(required=False, allow_blank=True, default="")
    features = serializers.DictField(
        child=serializers.ChoiceField(choices=ColumnType.choices),
        help_text="Feature column name → numeric or categorical. Columns left out are ignored.",
    )


class RevalidateSerializer(serializers.Serializer):
    encoding = serializers.CharField(required=False, allow_blank=True, max_length=40, default="")
    delimiter = serializers.ChoiceField(
        choices=[(k, str(v)) for k, v in DELIMITERS.items()], required=False, allow_blank=True, default=""
    )


class PreviewSerializer(serializers.Serializer):
    columns = serializers.ListField(child=serializers.CharField())
    rows = serializers.ListField(child=serializers.ListField(child=serializers.CharField(allow_null=True)))


class GrantSerializer(serializers.ModelSerializer):
    user = serializers.SlugRelatedField(slug_field="username", queryset=get_user_model().objects.all())
    granted_by = serializers.CharField(source="granted_by.username", read_only=True)
    dataset = serializers.UUIDField(source="dataset_id", read_only=True)
    is_active = serializers.BooleanField(read_only=True)

    class Meta:
        model = DatasetGrant
        fields = ["id", "dataset", "user", "granted_by", "created_at", "expires_at", "revoked_at", "is_active"]
        read_only_fields = ["id", "dataset", "granted_by", "created_at", "revoked_at", "is_active"]
