"""Read and write IDX files, the format of MNIST and Fashion-MNIST.

An IDX file is a 4-byte magic number ``00 00 TT DD`` (two zero bytes, a type
code ``TT``, the number of dimensions ``DD``), then ``DD`` big-endian uint32
sizes, then the values in C order, big-endian. The files are usually
distributed gzipped; the reader recognises gzip by its content, not by the
file name.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

__all__ = ["read_idx", "write_idx"]

# Type codes of the IDX format and the big-endian dtypes they stand for.
_CODE_TO_DTYPE = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_DTYPE_TO_CODE = {dtype.newbyteorder("="): code for code, dtype in _CODE_TO_DTYPE.items()}
_ALLOWED = ", ".join(str(dtype) for dtype in _DTYPE_TO_CODE)

_GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file, gzipped or plain.

    Parameters
    ----------
    path : str or os.PathLike
        The file. Gzip compression is detected from the first two bytes.

    Returns
    -------
    numpy.ndarray
        A writable, native-byte-order array with the shape stored in the
        header, e.g. ``(60000, 28, 28)`` uint8 for MNIST training images.

    Raises
    ------
    ValueError
        If the file is not valid IDX: bad magic number, unknown type code,
        truncated header or payload, trailing bytes, or corrupt gzip data.
        The message names the file.
    """
    path = Path(path)
    with open(path, "rb") as raw:
        compressed = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        if compressed:
            try:
                with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
                    data = stream.read()
            # A damaged gzip stream surfaces as any of these, depending on
            # where the damage is (header, deflate data, or missing end).
            except (OSError, EOFError, zlib.error) as err:
                raise ValueError(f"{path}: corrupt gzip data ({err}).") from None
        else:
            data = raw.read()
    return _parse(data, path)


def _parse(data: bytes, path: Path) -> np.ndarray:
    """Check an IDX byte string against its own header and decode it."""
    if len(data) < 4:
        raise ValueError(
            f"{path}: truncated IDX header: expected at least 4 bytes, received {len(data)}."
        )
    zero_a, zero_b, code, ndim = data[:4]
    if zero_a or zero_b:
        raise ValueError(
            f"{path}: bad IDX magic number 0x{data[:4].hex()}: expected two zero bytes, "
            "a type code and the number of dimensions (e.g. 0x00000803)."
        )
    if code not in _CODE_TO_DTYPE:
        codes = ", ".join(f"0x{c:02x}" for c in _CODE_TO_DTYPE)
        raise ValueError(
            f"{path}: unknown IDX type code 0x{code:02x}: expected one of {codes}."
        )
    if ndim == 0:
        raise ValueError(f"{path}: IDX header declares 0 dimensions: expected at least 1.")
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise ValueError(
            f"{path}: truncated IDX header: {ndim} dimensions need {header_size} bytes, "
            f"received {len(data)}."
        )
    shape = struct.unpack(f">{ndim}I", data[4:header_size])
    dtype = _CODE_TO_DTYPE[code]
    count = int(np.prod(shape, dtype=np.int64))
    expected = header_size + count * dtype.itemsize
    if len(data) != expected:
        problem = "truncated IDX payload" if len(data) < expected else "trailing bytes in IDX file"
        raise ValueError(
            f"{path}: {problem}: header says shape {shape} of {dtype.newbyteorder('=')}, "
            f"i.e. {expected} bytes in all, received {len(data)}."
        )
    values = np.frombuffer(data, dtype=dtype, count=count, offset=header_size)
    # astype copies, so the result is writable and in native byte order.
    return values.astype(dtype.newbyteorder("=")).reshape(shape)


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write an array as an IDX file, gzipped if the name ends in ``.gz``.

    Parameters
    ----------
    path : str or os.PathLike
        Destination file; ``*.gz`` is written gzip-compressed with a zero
        timestamp, so the same array always gives the same bytes.
    array : numpy.ndarray
        At least 1-D, of dtype uint8, int8, int16, int32, float32 or float64,
        every dimension below 2**32.

    Raises
    ------
    TypeError
        If ``array`` is not an ndarray or its dtype has no IDX type code.
    ValueError
        If ``array`` is 0-D, has more than 255 dimensions, or a dimension
        of 2**32 or more.
    """
    if not isinstance(array, np.ndarray):
        raise TypeError(
            "Invalid value for argument `array`: expected a numpy.ndarray, "
            f"received {type(array).__name__}."
        )
    native = array.dtype.newbyteorder("=")
    if native not in _DTYPE_TO_CODE:
        raise TypeError(
            f"Invalid value for argument `array`: expected dtype {_ALLOWED}, "
            f"received dtype={array.dtype}."
        )
    if not 1 <= array.ndim <= 255 or any(size >= 2**32 for size in array.shape):
        raise ValueError(
            "Invalid value for argument `array`: expected 1 to 255 dimensions, each "
            f"below 2**32, received shape={array.shape}."
        )
    header = bytes([0, 0, _DTYPE_TO_CODE[native], array.ndim])
    header += struct.pack(f">{array.ndim}I", *array.shape)
    payload = np.ascontiguousarray(array, dtype=native.newbyteorder(">")).tobytes()
    path = Path(path)
    if path.suffix == ".gz":
        with open(path, "wb") as raw, gzip.GzipFile(
            filename="", mode="wb", fileobj=raw, mtime=0
        ) as stream:
            stream.write(header + payload)
    else:
        path.write_bytes(header + payload)
