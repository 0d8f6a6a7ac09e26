"""Upload handling: files stream to a temporary file on disk and stop at MAX_UPLOAD_BYTES."""

from django.conf import settings
from django.core.files.uploadhandler import StopUpload, TemporaryFileUploadHandler


class LimitedTemporaryFileUploadHandler(TemporaryFileUploadHandler):
    """Like Django's temporary-file handler, but gives up once a file passes the size limit.

    The request gets `upload_too_large = True`, so the view can say so instead of
    "no file was sent".
    """

    def new_file(self, *args, **kwargs):
        self.received = 0
        super().new_file(*args, **kwargs)

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > settings.MAX_UPLOAD_BYTES:
            self.request.upload_too_large = True
            self.file.close()  # deletes the partial temporary file
            raise StopUpload(connection_reset=False)
        return super().receive_data_chunk(raw_data, start)
