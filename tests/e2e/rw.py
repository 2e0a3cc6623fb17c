"""Remote-write 1.0 wire format in pure Python (stdlib only).

The end-to-end tests build their own requests (valid, malformed, oversized)
and decode what promrelay forwards, so they need a protobuf and snappy codec
that depends on nothing promrelay itself uses. Field numbers are those of the
public remote write 1.0 spec (prompb.WriteRequest):

  WriteRequest { repeated TimeSeries timeseries = 1; repeated MetricMetadata metadata = 3; }
  TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
  Label        { string name = 1; string value = 2; }
  Sample       { double value = 1; int64 timestamp = 2; }

The snappy encoder emits literals only: a valid snappy block (any conforming
decoder accepts it) that is simply not compressed. The decoder handles the
full format, because promrelay compresses for real.
"""

import struct

RW1_CONTENT_TYPE = "application/x-protobuf"
RW2_CONTENT_TYPE = "application/x-protobuf;proto=io.prometheus.write.v2.Request"
RW1_HEADERS = {
    "Content-Type": RW1_CONTENT_TYPE,
    "Content-Encoding": "snappy",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}


# ---------------------------------------------------------------- varints


def _varint(n):
    if n < 0:
        n += 1 << 64  # int64 is encoded as its two's complement
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _read_varint(buf, pos):
    result = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


# ---------------------------------------------------------------- protobuf


def _field(number, wire_type):
    return _varint((number << 3) | wire_type)


def _bytes_field(number, payload):
    return _field(number, 2) + _varint(len(payload)) + payload


def _label_items(labels):
    items = labels.items() if isinstance(labels, dict) else labels
    return sorted((str(k), str(v)) for k, v in items)


def encode_timeseries(labels, samples):
    """labels: dict or (name, value) pairs; samples: [(timestamp_ms, value)]."""
    out = bytearray()
    for name, value in _label_items(labels):
        label = _bytes_field(1, name.encode()) + _bytes_field(2, value.encode())
        out += _bytes_field(1, label)
    for ts, value in samples:
        sample = _field(1, 1) + struct.pack("<d", float(value))
        sample += _field(2, 0) + _varint(int(ts))
        out += _bytes_field(2, sample)
    return bytes(out)


def encode_write_request(series):
    """series: iterable of (labels, [(timestamp_ms, value), ...])."""
    out = bytearray()
    for labels, samples in series:
        out += _bytes_field(1, encode_timeseries(labels, samples))
    return bytes(out)


def _skip(buf, pos, wire_type):
    if wire_type == 0:
        _, pos = _read_varint(buf, pos)
    elif wire_type == 1:
        pos += 8
    elif wire_type == 2:
        n, pos = _read_varint(buf, pos)
        pos += n
    elif wire_type == 5:
        pos += 4
    else:
        raise ValueError("unsupported wire type %d" % wire_type)
    if pos > len(buf):
        raise ValueError("truncated field")
    return pos


def _messages(buf):
    """Yields (field_number, wire_type, value) of one message level."""
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == 2:
            n, pos = _read_varint(buf, pos)
            if pos + n > len(buf):
                raise ValueError("truncated length-delimited field")
            yield number, wire_type, buf[pos:pos + n]
            pos += n
        elif wire_type == 1:
            if pos + 8 > len(buf):
                raise ValueError("truncated fixed64")
            yield number, wire_type, buf[pos:pos + 8]
            pos += 8
        elif wire_type == 0:
            v, pos = _read_varint(buf, pos)
            yield number, wire_type, v
        else:
            pos = _skip(buf, pos, wire_type)


def decode_write_request(buf):
    """Returns [(labels_dict, [(timestamp_ms, value)])]; other fields ignored."""
    result = []
    for number, wire_type, value in _messages(buf):
        if number != 1 or wire_type != 2:
            continue
        labels = {}
        samples = []
        for n2, wt2, v2 in _messages(value):
            if n2 == 1 and wt2 == 2:
                name = val = ""
                for n3, wt3, v3 in _messages(v2):
                    if n3 == 1 and wt3 == 2:
                        name = bytes(v3).decode()
                    elif n3 == 2 and wt3 == 2:
                        val = bytes(v3).decode()
                labels[name] = val
            elif n2 == 2 and wt2 == 2:
                ts = 0
                fval = 0.0
                for n3, wt3, v3 in _messages(v2):
                    if n3 == 1 and wt3 == 1:
                        fval = struct.unpack("<d", v3)[0]
                    elif n3 == 2 and wt3 == 0:
                        ts = v3 - (1 << 64) if v3 >= 1 << 63 else v3
                samples.append((ts, fval))
        result.append((labels, samples))
    return result


# ---------------------------------------------------------------- snappy


def snappy_compress(data):
    """A valid snappy block made of literals only (no compression)."""
    data = bytes(data)
    out = bytearray(_varint(len(data)))
    pos = 0
    while pos < len(data):
        chunk = data[pos:pos + 65536]
        n = len(chunk) - 1
        if n < 60:
            out.append(n << 2)
        elif n < 256:
            out.append(60 << 2)
            out.append(n)
        else:
            out.append(61 << 2)
            out += struct.pack("<H", n)
        out += chunk
        pos += len(chunk)
    return bytes(out)


def snappy_decompress(data, max_len=1 << 30):
    length, pos = _read_varint(data, 0)
    if length > max_len:
        raise ValueError("declared length %d over %d" % (length, max_len))
    out = bytearray()
    while pos < len(data):
        tag = data[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:
            n = tag >> 2
            if n >= 60:
                extra = n - 59
                n = int.from_bytes(data[pos:pos + extra], "little")
                pos += extra
            n += 1
            if pos + n > len(data):
                raise ValueError("truncated literal")
            out += data[pos:pos + n]
            pos += n
            continue
        if kind == 1:
            n = ((tag >> 2) & 7) + 4
            offset = ((tag >> 5) << 8) | data[pos]
            pos += 1
        elif kind == 2:
            n = (tag >> 2) + 1
            offset = int.from_bytes(data[pos:pos + 2], "little")
            pos += 2
        else:
            n = (tag >> 2) + 1
            offset = int.from_bytes(data[pos:pos + 4], "little")
            pos += 4
        if offset == 0 or offset > len(out):
            raise ValueError("bad copy offset")
        for _ in range(n):  # copies may overlap their own output
            out.append(out[-offset])
    if len(out) != length:
        raise ValueError("length mismatch: header %d, got %d" % (length, len(out)))
    return bytes(out)


def snappy_bomb(decompressed_len):
    """A small, valid snappy block that expands to decompressed_len zero bytes
    (one literal, then 64-byte copies of offset 1: ~21x expansion)."""
    assert decompressed_len >= 65 and (decompressed_len - 1) % 64 == 0
    copies = (decompressed_len - 1) // 64
    return _varint(decompressed_len) + b"\x00\x00" + b"\xfe\x01\x00" * copies


def snappy_lying_header(declared_len, payload=b"\x00"):
    """A block whose header promises declared_len bytes but holds a few."""
    return _varint(declared_len) + bytes([(len(payload) - 1) << 2]) + payload


def rw1_body(series):
    return snappy_compress(encode_write_request(series))


def count_samples(series):
    return sum(len(s) for _, s in series)
