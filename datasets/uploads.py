"""Enforce the upload size cap while the request body streams in.

Django hands file parts to upload handlers chunk by chunk; this one counts bytes and
stops the upload as soon as the cap is passed, so an oversized file is never fully
written. (The ASGI middleware in ``fedweb/limits.py`` refuses bodies whose declared
length is already too large before Django reads them.)
"""

from django.conf import settings
from django.core.files.uploadhandler import StopUpload, TemporaryFileUploadHandler


class CappedUploadHandler(TemporaryFileUploadHandler):
    def __init__(self, request=None):
        super().__init__(request)
        self.received = 0

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > settings.DATASET_MAX_UPLOAD_BYTES:
            if self.request is not None:
                self.request.upload_too_large = True
            self.file.close()
            raise StopUpload(connection_reset=True)
        return super().receive_data_chunk(raw_data, start)
