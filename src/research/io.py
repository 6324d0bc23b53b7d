"""Atomic, deterministic writing of derived files.

Every derived file is written to a temporary file in the same folder and then renamed over the target
(``os.replace`` is atomic on POSIX), so an interrupted run never leaves a truncated file behind.
JSON is written with sorted keys and without NaN so that two runs give byte-identical results.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _file_mode() -> int:
    # mkstemp creates 0600 files; derived files get the usual 0666 & ~umask so others can read the reports.
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


FILE_MODE = _file_mode()


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success rename it over ``target``, else delete it."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix + ".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp_path, FILE_MODE)
        os.replace(tmp_path, target)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_bytes(target: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def write_text(target: str | os.PathLike, text: str) -> Path:
    return write_bytes(target, text.encode("utf-8"))


def to_jsonable(value: Any) -> Any:
    """Convert numpy/pandas values to plain JSON types; NaN and infinities become ``None``."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, pd.DataFrame):
        return to_jsonable(value.to_dict(orient="records"))
    if isinstance(value, pd.Series):
        return to_jsonable(value.to_dict())
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating | float):
        f = float(value)
        return None if math.isnan(f) or math.isinf(f) else f
    if value is pd.NA or value is pd.NaT or value is None:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, Path):
        return value.as_posix()
    return value


def write_json(target: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` as pretty, key-sorted JSON (NaN -> null) atomically."""
    text = json.dumps(to_jsonable(data), indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False)
    return write_text(target, text + "\n")


def neutralise_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """Prefix text cells that a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``) with ``'``.

    Numbers are left alone; only text cells change (OWASP "CSV injection").
    """
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(
                lambda v: "'" + v if isinstance(v, str) and v.startswith(FORMULA_PREFIXES) else v)
    return out


def write_table(df: pd.DataFrame, target: str | os.PathLike, *, csv: bool = True) -> Path:
    """Write a processed table as parquet (for code) and, beside it, CSV (for people), both atomically.

    ``target`` is the ``.parquet`` path. The CSV copy has spreadsheet formulas neutralised.
    """
    target = Path(target).with_suffix(".parquet")
    with atomic_path(target) as tmp:
        df.to_parquet(tmp, index=False, engine="pyarrow")
    if csv:
        with atomic_path(target.with_suffix(".csv")) as tmp:
            neutralise_formulas(df).to_csv(tmp, index=False, lineterminator="\n")
    return target


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a processed table written by :func:`write_table`."""
    return pd.read_parquet(Path(path).with_suffix(".parquet"))


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_CORE_DATES = re.compile(rb"(<dcterms:(created|modified)[^>]*>)[^<]*(</dcterms:\2>)")


def make_xlsx_reproducible(path: str | os.PathLike) -> None:
    """Rewrite an XLSX in place so that the same content gives the same bytes.

    openpyxl stamps the save time into ``docProps/core.xml`` and every zip entry; both are replaced by a
    fixed time (the workbook's content is untouched). Call it on the temporary file inside
    :func:`atomic_path`, before the rename.
    """
    path = Path(path)
    with zipfile.ZipFile(path) as src:
        entries = [(info, src.read(info.filename)) for info in src.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info, data in entries:
            if info.filename == "docProps/core.xml":
                data = _CORE_DATES.sub(rb"\g<1>2000-01-01T00:00:00Z\g<3>", data)
            fixed = zipfile.ZipInfo(info.filename, date_time=_FIXED_ZIP_TIME)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o600 << 16
            dst.writestr(fixed, data)
