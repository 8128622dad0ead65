"""What went wrong, for a person and for the retry policy: the root cause of a failure (not the
first line of a Spark stack trace), and whether running the step again could help."""

from __future__ import annotations

import re
from typing import Any

MAX_MESSAGE = 600

# Root-cause types that no retry can heal: the step would fail the same way again.
_PERMANENT_TYPES = {
    "java.nio.file.AccessDeniedException",
    "org.apache.hadoop.security.AccessControlException",
    "org.apache.hadoop.fs.s3a.AWSBadRequestException",
    "java.lang.IllegalArgumentException",
    "java.net.URISyntaxException",
    "org.apache.hadoop.fs.UnsupportedFileSystemException",
}
_PERMANENT_MESSAGES = re.compile(
    r"permission denied|access ?denied|mkdirs failed|forbidden|nosuchbucket|"
    r"no filesystem for scheme|read-only file system",
    re.IGNORECASE,
)


class JobInputError(Exception):
    """An input or state the job needs is missing or unusable; the message says what to do.
    Not retryable: the same run would find the same thing."""


def _java_root(throwable: Any) -> Any:
    seen = 0
    while throwable is not None and seen < 50:
        cause = throwable.getCause()
        if cause is None or cause.equals(throwable):
            return throwable
        throwable, seen = cause, seen + 1
    return throwable


def _java_throwable(e: BaseException) -> Any | None:
    # py4j's Py4JJavaError carries the Throwable; pyspark's captured exceptions keep it too.
    return getattr(e, "java_exception", None) or getattr(e, "_origin", None)


def _first_paragraph(text: str) -> str:
    text = text.strip().split("\n\tat ")[0].split("\nJVM stacktrace:")[0].strip()
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


def root_cause(e: BaseException) -> dict[str, Any]:
    """{type, message, retryable} of the deepest cause we can reach."""
    throwable = _java_throwable(e)
    if throwable is not None:
        try:
            root = _java_root(throwable)
            kind = str(root.getClass().getName())
            message = str(root.getMessage() or root.toString())
        except Exception:  # the JVM is gone: say what Python saw
            kind, message = type(e).__name__, str(e)
    else:
        while e.__cause__ is not None and e.__cause__ is not e:
            e = e.__cause__
        kind, message = type(e).__name__, str(e)
    message = _first_paragraph(message)
    permanent = (
        isinstance(e, JobInputError)
        or kind == "JobInputError"
        or kind in _PERMANENT_TYPES
        or bool(_PERMANENT_MESSAGES.search(message))
    )
    return {"type": kind, "message": message, "retryable": not permanent}
