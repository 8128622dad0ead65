"""Hadoop FileSystem access through the JVM, so s3a:// works exactly like file:// (EMR)."""

from __future__ import annotations

import contextlib
from typing import Any
from urllib.parse import urlsplit

from py4j.java_gateway import JavaClass
from pyspark.sql import SparkSession


class HadoopFS:
    def __init__(self, spark: SparkSession):
        sc = spark.sparkContext
        self._jvm = sc._jvm
        self._conf = sc._jsc.hadoopConfiguration()
        # Resolved once by its full name: `_jvm.org.apache.hadoop.fs.Path` asks the JVM about
        # each package segment, and each question is a class-path scan (~1 ms a path).
        self._path_class = JavaClass("org.apache.hadoop.fs.Path", sc._gateway._gateway_client)
        # Hadoop caches a FileSystem per scheme and authority; so does this, saving a call.
        self._filesystems: dict[tuple[str, str], Any] = {}

    def _path(self, uri: str):
        path = self._path_class(uri)
        parts = urlsplit(uri)
        key = (parts.scheme, parts.netloc)
        fs = self._filesystems.get(key)
        if fs is None:
            fs = self._filesystems[key] = path.getFileSystem(self._conf)
        return path, fs

    def exists(self, uri: str) -> bool:
        path, fs = self._path(uri)
        return bool(fs.exists(path))

    def size(self, uri: str) -> int | None:
        """A file's length in bytes; None when it does not exist."""
        path, fs = self._path(uri)
        try:
            return int(fs.getFileStatus(path).getLen())
        except Exception as e:
            if "FileNotFoundException" in f"{type(e).__name__} {e}":
                return None
            raise

    def delete(self, uri: str) -> bool:
        """Recursive delete; False when there was nothing to delete."""
        path, fs = self._path(uri)
        return bool(fs.delete(path, True))

    def rename(self, src: str, dst: str) -> bool:
        """Hadoop rename (atomic on HDFS and the local FS, copy + delete on S3). `dst` must not
        exist: an existing directory would receive `src` as a child. Its parent is created."""
        s, fs = self._path(src)
        d, _ = self._path(dst)
        parent = d.getParent()
        if parent is not None and not fs.exists(parent):
            fs.mkdirs(parent)
        return bool(fs.rename(s, d))

    def glob(self, pattern: str, files: bool = True) -> list[str]:
        """Matching files (or, with files=False, any matching paths)."""
        path, fs = self._path(pattern)
        statuses = fs.globStatus(path)
        if statuses is None:
            return []
        return sorted(str(s.getPath().toString()) for s in statuses if s.isFile() or not files)

    def read_bytes(self, uri: str) -> bytes:
        path, fs = self._path(uri)
        stream = fs.open(path)
        try:
            out = bytearray()
            buf = self._jvm.java.io.ByteArrayOutputStream()
            self._jvm.org.apache.hadoop.io.IOUtils.copyBytes(stream, buf, 65536, False)
            out.extend(bytes(buf.toByteArray()))
            return bytes(out)
        finally:
            stream.close()

    def write_bytes(self, uri: str, data: bytes) -> None:
        path, fs = self._path(uri)
        # The local FS would leave a .crc file beside the report; readers don't want it.
        with contextlib.suppress(Exception):
            fs.setWriteChecksum(False)
        out = fs.create(path, True)
        try:
            out.write(bytearray(data))
        finally:
            out.close()
