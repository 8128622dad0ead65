"""Hadoop FileSystem access through the JVM, so s3a:// works exactly like file:// (EMR)."""

from __future__ import annotations

import contextlib

from pyspark.sql import SparkSession


class HadoopFS:
    def __init__(self, spark: SparkSession):
        self._jvm = spark.sparkContext._jvm
        self._conf = spark.sparkContext._jsc.hadoopConfiguration()

    def _path(self, uri: str):
        path = self._jvm.org.apache.hadoop.fs.Path(uri)
        return path, path.getFileSystem(self._conf)

    def exists(self, uri: str) -> bool:
        path, fs = self._path(uri)
        return bool(fs.exists(path))

    def delete(self, uri: str) -> bool:
        """Recursive delete; False when there was nothing to delete."""
        path, fs = self._path(uri)
        return bool(fs.delete(path, True))

    def glob(self, pattern: str) -> list[str]:
        path, fs = self._path(pattern)
        statuses = fs.globStatus(path)
        if statuses is None:
            return []
        return sorted(str(s.getPath().toString()) for s in statuses if s.isFile())

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
