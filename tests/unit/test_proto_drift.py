"""The checked-in generated modules must match the .proto files, and the schema must match ML-Agents' wire facts."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

from rayagents.protocol import codegen
from rayagents.protocol.communicator_objects import (
    agent_action_pb2,
    agent_info_pb2,
    unity_message_pb2,
    unity_rl_input_pb2,
    unity_rl_output_pb2,
    unity_to_external_pb2_grpc,
)


def _compiled_from_proto_files(tmp_path: Path) -> dict[str, descriptor_pb2.FileDescriptorProto]:
    pytest.importorskip("grpc_tools", reason="the drift check needs grpcio-tools (the dev extra)")
    descriptor_set = tmp_path / "schema.pb"
    codegen.run_protoc(tmp_path, python=False, grpc=False, descriptor_set=descriptor_set)
    files = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set.read_bytes()).file
    for f in files:
        f.ClearField("source_code_info")
        _clear_json_names(f.message_type)
    return {f.name: f for f in files}


def _clear_json_names(messages) -> None:
    # protoc adds json_name to descriptor sets but not to the descriptors it embeds in Python modules.
    for message in messages:
        for f in message.field:
            f.ClearField("json_name")
        _clear_json_names(message.nested_type)


def test_every_proto_file_has_a_generated_module() -> None:
    protos = {p.stem for p in codegen.proto_files()}
    modules = {p.name.removesuffix("_pb2.py") for p in codegen.PROTO_PACKAGE_DIR.glob("*_pb2.py")}
    assert protos == modules
    assert len(protos) == 21


def test_generated_modules_match_proto_files(tmp_path: Path) -> None:
    compiled = _compiled_from_proto_files(tmp_path)
    for proto in codegen.proto_files():
        module = importlib.import_module(f"rayagents.protocol.communicator_objects.{proto.stem}_pb2")
        embedded = descriptor_pb2.FileDescriptorProto.FromString(module.DESCRIPTOR.serialized_pb)
        fresh = compiled[embedded.name]
        assert embedded == fresh, (
            f"{proto.name} changed but its generated module did not: run `python -m rayagents.protocol.codegen`"
        )


def test_service_method_path_is_the_unity_one() -> None:
    source = Path(unity_to_external_pb2_grpc.__file__).read_text()
    assert "/communicator_objects.UnityToExternalProto/Exchange" in source


def _fields(message: type) -> dict[str, int]:
    return {f.name: f.number for f in message.DESCRIPTOR.fields}


def test_field_numbers_match_the_communicator_schema() -> None:
    assert _fields(agent_action_pb2.AgentActionProto) == {
        "vector_actions_deprecated": 1, "value": 4, "continuous_actions": 6, "discrete_actions": 7,
    }
    assert _fields(agent_info_pb2.AgentInfoProto) == {
        "reward": 7, "done": 8, "max_step_reached": 9, "id": 10, "action_mask": 11, "observations": 13,
        "group_id": 14, "group_reward": 15,
    }
    assert _fields(unity_message_pb2.UnityMessageProto) == {"header": 1, "unity_output": 2, "unity_input": 3}
    assert _fields(unity_rl_input_pb2.UnityRLInputProto) == {"agent_actions": 1, "command": 4, "side_channel": 5}
    assert _fields(unity_rl_output_pb2.UnityRLOutputProto) == {"agentInfos": 2, "side_channel": 3}
    assert unity_message_pb2.UnityMessageProto.DESCRIPTOR.full_name == "communicator_objects.UnityMessageProto"


def test_known_bytes_decode() -> None:
    """An AgentInfoProto written by hand, field by field, as a Unity player puts it on the wire."""
    wire = bytes.fromhex(
        "3d0000803f"  # 7: reward = 1.0 (fixed32)
        "4001"  # 8: done = true
        "502a"  # 10: id = 42
        "5a020100"  # 11: action_mask = [true, false] (packed)
        "7003"  # 14: group_id = 3
    )
    info = agent_info_pb2.AgentInfoProto.FromString(wire)
    assert (info.reward, info.done, info.id, list(info.action_mask), info.group_id) == (1.0, True, 42, [True, False], 3)
