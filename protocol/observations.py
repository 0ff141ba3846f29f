"""Observations on the wire (``ObservationProto``) and as numpy arrays, at both ends.

The trainer end decodes a batch of one sensor's observations (one proto per agent) into ``float32
(n_agents, *shape)``; the Unity end (the simulation host) encodes one agent's observation as a proto.

PNG-compressed (visual) observations decode to ``float32`` in [0, 1] by default, as ``mlagents_envs`` does.
With ``visual_observations="uint8"`` a sensor whose first observation arrives PNG-compressed decodes to
``uint8`` 0..255 instead, the PNG's 8-bit values (4 times smaller; a network scales them where it uses them);
sensors sent as floats stay ``float32``. A sensor's dtype is fixed once, from its first observation, so that
every batch of a run, empty ones included, has the same dtype: should a ``uint8`` sensor later send floats (its
compression turned off), they are quantized as the PNG encoder would
(:func:`~rayagents.protocol.png.float_to_pixels`), and a ``float32`` sensor that later sends PNGs gets them
scaled to [0, 1].

Float observations are decoded through their serialized bytes: a proto's packed ``float_data`` is the
little-endian float32 array itself, so a batch is one ``SerializeToString`` per proto, one join of the cut-out
values and one array made on them, several times faster than reading the repeated field element by element. Protos that are
not laid out as expected (another shape, compressed, wrong size) take the general path, which checks each
one and says what is wrong.
"""

from __future__ import annotations

import math
import sys
from operator import itemgetter, methodcaller
from typing import Literal, Sequence

import numpy as np

from rayagents.protocol.communicator_objects.observation_pb2 import PNG, ObservationProto
from rayagents.protocol.exceptions import UnityObservationException
from rayagents.protocol.png import (
    PIXEL_DTYPES,
    PixelDtype,
    PngError,
    decode_png_stream,
    encode_png_stream,
    float_to_pixels,
)
from rayagents.protocol.types import DimensionProperty, ObservationSpec, ObservationType
from rayagents.protocol.wire import packed_varints, tag, varint


VISUAL_DIMENSION_PROPERTIES = (
    int(DimensionProperty.NONE),
    int(DimensionProperty.TRANSLATIONAL_EQUIVARIANCE),
    int(DimensionProperty.TRANSLATIONAL_EQUIVARIANCE),
)
"""What Unity sends for a CHW visual observation: ``(1, 2, 2)``."""

VECTOR_DIMENSION_PROPERTIES = (int(DimensionProperty.NONE),)
"""What Unity sends for a vector observation: ``(1,)``."""

VARIABLE_LENGTH_DIMENSION_PROPERTIES = (int(DimensionProperty.VARIABLE_SIZE), int(DimensionProperty.NONE))
"""What Unity sends for a buffer sensor ``(max_entities, entity_size)``: ``(4, 1)``."""

# Keys of the ObservationProto fields written as bytes (field numbers from observation.proto).
_TAG_SHAPE = tag(1, 2)  # packed int32
_TAG_FLOAT_DATA = tag(4, 2)  # FloatData message
_TAG_FLOAT_DATA_DATA = tag(1, 2)  # FloatData.data, packed float
_TAG_DIMENSION_PROPERTIES = tag(6, 2)  # packed int32
_TAG_OBSERVATION_TYPE = tag(7, 0)  # enum
_TAG_NAME = tag(8, 2)  # string

_SERIALIZE = ObservationProto.SerializeToString

_LITTLE_ENDIAN = sys.byteorder == "little"
"""Whether float32 in memory is the wire's little-endian float32."""

_SUMMED_CHECK_MAX = 128
"""Up to this many values, NaN/Inf is looked for with one Python sum (fewer numpy calls for a few agents)."""


def observation_spec_from_proto(obs: ObservationProto) -> ObservationSpec:
    """The spec of the sensor that sent ``obs``: its shape, dimension properties, type and name.

    An empty ``dimension_properties`` list means ``UNSPECIFIED`` for every dimension.
    """
    shape = tuple(int(d) for d in obs.shape)
    if len(obs.dimension_properties) > 0:
        properties = tuple(DimensionProperty(int(p)) for p in obs.dimension_properties)
    else:
        properties = (DimensionProperty.UNSPECIFIED,) * len(shape)
    try:
        observation_type = ObservationType(int(obs.observation_type))
    except ValueError:
        raise UnityObservationException(
            f"Sensor '{obs.name}' sent observation_type {int(obs.observation_type)}, which this trainer does not "
            "know (0 = DEFAULT, 1 = GOAL_SIGNAL). Check that the ML-Agents package of the build speaks API 1.5.0."
        ) from None
    return ObservationSpec(shape=shape, dimension_property=properties, observation_type=observation_type, name=obs.name)


VisualObservations = Literal["float32", "uint8"]
"""How PNG-compressed (visual) observations are decoded: ``"float32"`` (the default, as ``mlagents_envs``):
scaled to [0, 1]; ``"uint8"``: kept as their 8-bit values 0..255 (see the module docstring). Observations
sent as floats are ``float32`` either way."""


def check_visual_observations(visual_observations: str) -> VisualObservations:
    """``visual_observations`` itself when it is ``"float32"`` or ``"uint8"``; else a ``ValueError`` that says so."""
    if visual_observations == "float32" or visual_observations == "uint8":
        return visual_observations
    raise ValueError(
        f"visual_observations must be 'float32' (PNG observations scaled to [0, 1], as mlagents_envs) or "
        f"'uint8' (PNG observations kept as their 8-bit values), not {visual_observations!r}."
    )


def observation_dtype(first: ObservationProto, visual_observations: VisualObservations) -> PixelDtype:
    """The dtype a sensor decodes to for a run, from its ``first`` observation: ``"uint8"`` when it is
    PNG-compressed and ``visual_observations`` is ``"uint8"``, else ``"float32"``."""
    if check_visual_observations(visual_observations) == "uint8" and first.compression_type == PNG:
        return "uint8"
    return "float32"


def observations_to_array(
    protos: Sequence[ObservationProto],
    spec: ObservationSpec,
    *,
    behavior: str,
    visual_observations: VisualObservations = "float32",
) -> np.ndarray:
    """Decodes one sensor's observations of a batch of agents to ``(len(protos), *spec.shape)``.

    Float observations are reshaped to the spec's shape; PNG observations are split, decoded, mapped to
    their channels and scaled to [0, 1] (CHW), all ``float32``. With ``visual_observations="uint8"`` and a
    first proto that is PNG-compressed, the batch is ``uint8`` instead (see :func:`observation_dtype`).
    Rank-1 and rank-2 float observations holding NaN or Inf raise ``UnityObservationException`` naming
    ``behavior`` and the sensor, as does any observation whose shape is not the spec's. To decode the same
    sensor every step, keep an :class:`ObservationDecoder`.
    """
    check_visual_observations(visual_observations)
    dtype = observation_dtype(protos[0], visual_observations) if len(protos) > 0 else "float32"
    return ObservationDecoder(spec, behavior, dtype).decode(protos)


class ObservationDecoder:
    """Decodes one sensor's observations batch after batch, as :func:`observations_to_array` does.

    Every batch is ``dtype``: ``"float32"`` (floats as sent, PNGs scaled to [0, 1]) or ``"uint8"`` (PNGs as
    their 8-bit values, floats quantized by :func:`~rayagents.protocol.png.float_to_pixels`); pick it with
    :func:`observation_dtype`. What depends on the spec alone (the byte prefix of a float observation of its
    shape, whether NaN/Inf is checked) is worked out once, so that a step of a few agents costs a handful of calls.
    """

    __slots__ = (
        "spec",
        "behavior",
        "dtype",
        "_shape",
        "_numpy_dtype",
        "_check_finite",
        "_nbytes",
        "_starts_with_prefix",
        "_float_bytes",
    )

    def __init__(self, spec: ObservationSpec, behavior: str, dtype: PixelDtype = "float32") -> None:
        if dtype not in PIXEL_DTYPES:
            raise ValueError(
                f"Observation '{spec.name}' of behavior '{behavior}' cannot be decoded to {dtype!r}: give "
                f"{' or '.join(map(repr, PIXEL_DTYPES))}."
            )
        self.spec = spec
        """The sensor's spec (shape, name)."""
        self.behavior = behavior
        """The behavior named in errors."""
        self.dtype: PixelDtype = dtype
        """The dtype of every batch it returns."""
        self._shape = tuple(int(d) for d in spec.shape)
        self._numpy_dtype = np.dtype(dtype)
        self._check_finite = len(self._shape) in (1, 2) and dtype == "float32"
        self._nbytes = 4 * math.prod(self._shape)
        prefix = _float_head(self._shape) if self._nbytes else b""
        self._starts_with_prefix = methodcaller("startswith", prefix)
        self._float_bytes = itemgetter(slice(len(prefix), len(prefix) + self._nbytes))

    def decode(self, protos: Sequence[ObservationProto]) -> np.ndarray:
        """The observations of ``protos`` (one per agent) as a new ``(len(protos), *shape)`` array of ``dtype``."""
        count = len(protos)
        if count == 0:
            return np.zeros((0,) + self._shape, dtype=self._numpy_dtype)
        # A PNG batch skips the float path at once (its serialized bytes could not match the float prefix).
        batch = self._packed_float_batch(protos) if self._nbytes and protos[0].compression_type != PNG else None
        if batch is None:
            batch = np.empty((count,) + self._shape, dtype=self._numpy_dtype)
            for row, proto in enumerate(protos):
                batch[row] = _observation_to_array(proto, self.spec, behavior=self.behavior, row=row, dtype=self.dtype)
        elif self.dtype == "uint8":
            batch = float_to_pixels(batch)
        if self._check_finite and not _all_finite(batch):
            _raise_on_nan_or_inf(batch, self.spec, behavior=self.behavior)
        return batch

    def _packed_float_batch(self, protos: Sequence[ObservationProto]) -> np.ndarray | None:
        """Decodes a batch of float observations from their serialized bytes; None if any does not fit.

        Protobuf serializes fields in field-number order and repeated scalars packed, so a float observation
        of this shape serializes to exactly ``prefix + raw float32 bytes + later fields``, where ``prefix``
        holds the shape and the ``float_data`` headers. A proto whose bytes do not start with that prefix
        (other shape, compressed, other number of floats) sends the whole batch down the checked per-proto path.
        """
        chunks = list(map(_SERIALIZE, protos))
        if not all(map(self._starts_with_prefix, chunks)):
            return None
        # Every agent's float32 bytes, cut out and joined in C into a writable buffer: one array made from it.
        floats = bytearray(b"".join(map(self._float_bytes, chunks)))
        shape = (len(chunks),) + self._shape
        if _LITTLE_ENDIAN:
            return np.ndarray(shape, dtype=np.float32, buffer=floats)
        return np.frombuffer(floats, dtype="<f4").astype(np.float32).reshape(shape)


def float_observation_proto(
    values: np.ndarray,
    name: str,
    *,
    dimension_properties: Sequence[int] | None = None,
    observation_type: int = 0,
) -> ObservationProto:
    """An uncompressed observation of ``values`` (any shape; sent as float32, row-major) from sensor ``name``.

    Without ``dimension_properties`` the ones Unity's sensors send are used: ``(1,)`` for a vector,
    ``(4, 1)`` for a rank-2 (variable-length entity) observation, ``(1, 2, 2)`` for CHW, none otherwise.
    """
    array = np.ascontiguousarray(values, dtype="<f4")
    head, tail = float_observation_layout(
        array.shape, name, dimension_properties=dimension_properties, observation_type=observation_type
    )
    # Written as bytes and parsed once: several times cheaper than filling the repeated float field.
    return ObservationProto.FromString(head + array.tobytes() + tail)


def float_observation_layout(
    shape: tuple[int, ...],
    name: str,
    *,
    dimension_properties: Sequence[int] | None = None,
    observation_type: int = 0,
) -> tuple[bytes, bytes]:
    """The serialized ``ObservationProto`` of a float observation of ``shape``, without its data.

    The message is ``head + <float32 little-endian values> + tail``, fields in field-number order as
    protobuf writes them. ``dimension_properties`` default as in :func:`float_observation_proto`.
    """
    shape = tuple(map(int, shape))
    if dimension_properties is None:
        dimension_properties = _default_dimension_properties(len(shape))
    elif len(dimension_properties) not in (0, len(shape)):
        raise ValueError(
            f"sensor '{name}': {len(dimension_properties)} dimension properties for an observation of shape {shape}"
        )
    tail = [packed_varints(_TAG_DIMENSION_PROPERTIES, dimension_properties)]
    if observation_type:
        tail += [_TAG_OBSERVATION_TYPE, varint(int(observation_type))]
    if name:
        encoded = name.encode("utf-8")
        tail += [_TAG_NAME, varint(len(encoded)), encoded]
    return _float_head(shape), b"".join(tail)


def png_observation_proto(chw: np.ndarray, name: str, *, observation_type: int = 0) -> ObservationProto:
    """A PNG-compressed visual observation of ``chw`` (float in [0, 1], any channel count) from sensor ``name``.

    Channels are packed three to a PNG and the PNGs concatenated. One channel is sent as one gray RGB PNG
    with the mapping ``[0, 0, 0]``; three channels with no mapping; other counts with the mapping
    ``[0, 1, ..., C-1]`` and zero padding channels mapped to ``-1``.
    """
    chw = np.asarray(chw)
    try:
        data, mapping = encode_png_stream(chw)
    except PngError as error:
        raise ValueError(f"sensor '{name}': {error}") from error
    return ObservationProto(
        shape=chw.shape,
        compression_type=PNG,
        compressed_data=data,
        compressed_channel_mapping=mapping,
        dimension_properties=VISUAL_DIMENSION_PROPERTIES,
        observation_type=observation_type,
        name=name,
    )


def _default_dimension_properties(rank: int) -> tuple[int, ...]:
    """The dimension properties Unity's own sensors send for an observation of this rank."""
    if rank == 1:
        return VECTOR_DIMENSION_PROPERTIES
    if rank == 2:
        return VARIABLE_LENGTH_DIMENSION_PROPERTIES
    if rank == 3:
        return VISUAL_DIMENSION_PROPERTIES
    return ()


def _float_head(shape: tuple[int, ...]) -> bytes:
    """The bytes of a float ``ObservationProto`` of ``shape`` before its float32 values: the shape field and
    the ``float_data`` headers (``compression_type`` NONE is the default, so it is not written)."""
    nbytes = 4 * math.prod(shape)
    inner_header = _TAG_FLOAT_DATA_DATA + varint(nbytes) if nbytes else b""
    return packed_varints(_TAG_SHAPE, shape) + _TAG_FLOAT_DATA + varint(len(inner_header) + nbytes) + inner_header


def _observation_to_array(
    proto: ObservationProto, spec: ObservationSpec, *, behavior: str, row: int, dtype: PixelDtype
) -> np.ndarray:
    """Decodes one agent's observation to ``dtype``, checking it against ``spec``; errors name the behavior and
    sensor."""
    where = f"Observation '{spec.name}' of behavior '{behavior}' (agent {row} of the batch)"
    shape = tuple(spec.shape)
    sent_shape = tuple(int(d) for d in proto.shape)
    if sent_shape != shape:
        raise UnityObservationException(
            f"{where} has shape {sent_shape}, but the behavior's spec says {shape}. All agents of a behavior must "
            "send the same sensors with the same shapes; check the sensor settings of each agent in the scene."
        )
    if proto.compression_type == PNG:
        channels = shape[0] if shape else 1
        try:
            array = decode_png_stream(proto.compressed_data, proto.compressed_channel_mapping, channels, dtype)
        except PngError as error:
            raise UnityObservationException(
                f"{where} could not be decoded: {error}. Check the sensor's compression settings "
                "(or set its compression to None)."
            ) from error
        if array.shape != shape:
            raise UnityObservationException(
                f"{where} decoded to shape {array.shape} but the spec says {shape}. Check the sensor's width, "
                "height, grayscale setting and compressed channel mapping."
            )
        return array
    data = proto.float_data.data
    if len(data) != math.prod(shape):
        raise UnityObservationException(
            f"{where} holds {len(data)} floats, but its shape {shape} needs {math.prod(shape)}. Check that the "
            "sensor writes exactly as many values as its declared size (e.g. VectorSensor size, "
            "CollectObservations)."
        )
    values = np.array(data, dtype=np.float32).reshape(shape)
    return float_to_pixels(values) if dtype == "uint8" else values


def _all_finite(batch: np.ndarray) -> bool:
    """True when ``batch`` holds no NaN or Inf.

    A small batch is summed as Python floats: a sum of float32 values cannot overflow a float64, so it is NaN
    or Inf exactly when a value is.
    """
    if batch.size <= _SUMMED_CHECK_MAX:
        return math.isfinite(sum(batch.reshape(-1).tolist()))
    return bool(np.isfinite(batch).all())


def _raise_on_nan_or_inf(batch: np.ndarray, spec: ObservationSpec, *, behavior: str) -> None:
    """Raises ``UnityObservationException`` naming the behavior and sensor when ``batch`` holds NaN or Inf."""
    finite = np.isfinite(batch)
    if finite.all():
        return
    bad_rows = np.flatnonzero(~finite.reshape(len(batch), -1).all(axis=1))
    raise UnityObservationException(
        f"Observation '{spec.name}' of behavior '{behavior}' holds NaN or Inf values ({len(bad_rows)} of "
        f"{len(batch)} agents, first at batch row {int(bad_rows[0])}). Check the code that fills this sensor "
        "(CollectObservations or the simulator) for a division by zero, an uninitialized value, or physics that "
        "blew up."
    )
