"""deploy/: the cluster launcher configs, the KubeRay manifests, the image and the walk-through's commands.

The launcher configs are checked against the schema the installed Ray ships (and Ray's own config preparation,
as `ray up` runs it before it calls any cloud); the KubeRay cluster specs as Ray's autoscaler reads them; every
`rayagents-learn` command line, in deploy/README.md and in the RayJob, with rayagents' own parser. Beyond
validity, the pieces must fit: the players' custom resource that the commands ask for is the one the node types
offer, the learner has a GPU node to scale to, the dashboard stays private and token authentication stays on.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import ray.autoscaler
import yaml

from rayagents.cluster.arguments import CommandLine, parse_command_line

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
LAUNCHER_CONFIGS = {"aws": DEPLOY / "aws" / "cluster.yaml", "gcp": DEPLOY / "gcp" / "cluster.yaml"}
RAYCLUSTER = DEPLOY / "kuberay" / "raycluster.yaml"
RAYJOB = DEPLOY / "kuberay" / "rayjob.yaml"
RESULTS_PVC = DEPLOY / "kuberay" / "results-pvc.yaml"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
WALKTHROUGH = DEPLOY / "README.md"

PROJECT_FOLDERS = ("rayagents", "protocol", "configs", "sims", "actors", "learner", "cluster")
"""The repository's package folders: what a node or the image needs to install rayagents from a copy."""

PLAYER_RESOURCE = "unity_player"
"""The custom resource that marks a player node; EnvActors ask for it with --env-actor-resources."""

RESULTS_MOUNT = "/home/ray/results"
"""Where every node of the deploy configs keeps --results-dir."""

RESULTS_CLAIM = "rayagents-results"
"""The PersistentVolumeClaim (results-pvc.yaml) the KubeRay pods mount at RESULTS_MOUNT."""

TOKEN_AUTH_RAY = (2, 52)
"""The first Ray version with token authentication."""

SHELL_OPERATORS = frozenset({"&&", "||", ";", "|", "&", "(", ")"})


# ---- helpers ---------------------------------------------------------------------------------------------------


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def ray_schema() -> dict[str, Any]:
    """The cluster launcher schema of the installed Ray."""
    path = Path(ray.autoscaler.__file__).parent / "ray-schema.json"
    assert path.is_file(), f"the installed Ray has no cluster launcher schema at {path}"
    return json.loads(path.read_text())


def head_type(config: Mapping[str, Any]) -> dict[str, Any]:
    return config["available_node_types"][config["head_node_type"]]


def worker_types(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: spec for name, spec in config["available_node_types"].items() if name != config["head_node_type"]}


def kuberay_resources(value: str) -> dict[str, Any]:
    """A `rayStartParams.resources` value in the form KubeRay documents: a JSON object inside double quotes with
    its own double quotes backslash-escaped ('"{\\"unity_player\\": 1}"'). Ray's autoscaler reads it by dropping
    the outer quotes and the backslashes, so an unquoted object would break it: ValueError for any other form."""
    if len(value) < 2 or value[0] != '"' or value[-1] != '"':
        raise ValueError(f"{value!r} is not wrapped in double quotes")
    inner = value[1:-1]
    if re.search(r'(?<!\\)"', inner):
        raise ValueError(f"{value!r} has a double quote that is not escaped")
    parsed = json.loads(inner.replace('\\"', '"'))
    if not isinstance(parsed, dict):
        raise ValueError(f"{value!r} is not a JSON object")
    return parsed


def bash_blocks(markdown: str) -> list[str]:
    """The contents of the ```bash fenced blocks of a Markdown text."""
    return re.findall(r"^```bash[ \t]*\n(.*?)^```", markdown, flags=re.MULTILINE | re.DOTALL)


def learn_commands(script: str) -> Iterator[tuple[list[str], list[str]]]:
    """Each `rayagents-learn` command of a shell script: (the words before it on its line, its arguments).

    Backslash-newline continuations are joined; the arguments end at a shell operator (&&, ;, |, ...) or at the
    end of the line; comments are skipped."""
    joined = script.replace("\\\n", " ")
    for line in joined.splitlines():
        if "rayagents-learn" not in line:
            continue
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words = list(lexer)
        for index, word in enumerate(words):
            if word != "rayagents-learn":
                continue
            arguments: list[str] = []
            for argument in words[index + 1 :]:
                if argument in SHELL_OPERATORS:
                    break
                arguments.append(argument)
            yield words[:index], arguments


def walkthrough_commands() -> list[tuple[list[str], list[str]]]:
    commands: list[tuple[list[str], list[str]]] = []
    for block in bash_blocks(WALKTHROUGH.read_text()):
        commands.extend(learn_commands(block))
    return commands


def parsed(arguments: list[str]) -> CommandLine:
    """`arguments` parsed by rayagents-learn's parser; a rejected command line fails the test with its words."""
    try:
        return parse_command_line(arguments)
    except SystemExit as exit_:
        pytest.fail(f"rayagents-learn rejects {shlex.join(arguments)!r} (exit {exit_.code})")


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of each Dockerfile instruction, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        whole = (pending + line).strip()
        pending = ""
        if whole:
            keyword, _, rest = whole.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def kuberay_cluster_specs() -> dict[str, dict[str, Any]]:
    """The Ray cluster specs of the manifests: the RayCluster's spec and the RayJob's rayClusterSpec."""
    return {
        "raycluster": load_yaml(RAYCLUSTER)["spec"],
        "rayjob": load_yaml(RAYJOB)["spec"]["rayClusterSpec"],
    }


def group(spec: Mapping[str, Any], name: str) -> dict[str, Any]:
    groups = {g["groupName"]: g for g in spec["workerGroupSpecs"]}
    assert name in groups, f"no worker group {name!r}; the groups are {sorted(groups)}"
    return groups[name]


def pod_containers(template: Mapping[str, Any]) -> list[dict[str, Any]]:
    return template["spec"]["containers"]


def results_mounted(template: Mapping[str, Any]) -> bool:
    """The pod mounts the results claim at RESULTS_MOUNT in its Ray container."""
    volumes = {
        v["name"]: v["persistentVolumeClaim"]["claimName"]
        for v in template["spec"].get("volumes", [])
        if "persistentVolumeClaim" in v
    }
    mounts = pod_containers(template)[0].get("volumeMounts", [])
    return any(m["mountPath"] == RESULTS_MOUNT and volumes.get(m["name"]) == RESULTS_CLAIM for m in mounts)


def version_of(image: str) -> tuple[int, ...]:
    """The Ray version of a rayproject/ray image tag ("rayproject/ray:2.60.0-py311-gpu" -> (2, 60, 0))."""
    match = re.fullmatch(r"rayproject/ray:(\d+)\.(\d+)\.(\d+)-py\d+(-gpu)?", image)
    assert match, f"{image!r} is not a rayproject/ray:X.Y.Z-pyNN[-gpu] image"
    return tuple(int(part) for part in match.groups()[:3])


def rayjob_arguments() -> list[str]:
    entrypoint = load_yaml(RAYJOB)["spec"]["entrypoint"]
    words = shlex.split(entrypoint)
    assert words[0] == "rayagents-learn", f"the RayJob's entrypoint starts with {words[0]!r}"
    return words[1:]


# ---- (a) the cluster launcher configs ------------------------------------------------------------------------


@pytest.mark.parametrize("cloud", sorted(LAUNCHER_CONFIGS))
def test_launcher_config_validates_against_rays_schema(cloud: str) -> None:
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = load_yaml(LAUNCHER_CONFIGS[cloud])
    jsonschema.Draft7Validator(ray_schema()).validate(config)
    # What `ray up` does with it before any cloud call: merge the provider's defaults, check the node types.
    validate_config(prepare_config(copy.deepcopy(config)))


@pytest.mark.parametrize("cloud", sorted(LAUNCHER_CONFIGS))
def test_launcher_players_are_tagged_autoscaling_cpu_nodes(cloud: str) -> None:
    config = load_yaml(LAUNCHER_CONFIGS[cloud])
    players = {name: spec for name, spec in worker_types(config).items() if PLAYER_RESOURCE in spec["resources"]}
    assert players, f"no worker type offers {PLAYER_RESOURCE}: EnvActors asking for it would never be placed"
    for name, spec in players.items():
        resources = spec["resources"]
        assert resources[PLAYER_RESOURCE] >= 1, name
        assert resources.get("GPU", 0) == 0, f"{name} puts players on GPU machines"
        assert spec.get("min_workers", 0) == 0 and spec["max_workers"] >= 1, f"{name} does not autoscale from 0"
        # At --num-cpus-per-env-actor 2 (every cloud command in the walk-through), all its players fit.
        assert resources["CPU"] >= 2 * resources[PLAYER_RESOURCE], f"{name} has too few CPUs for its players"
    head = head_type(config)
    assert PLAYER_RESOURCE not in head["resources"], "the head must not take players"
    assert head["resources"].get("CPU") == 0, "the head keeps CPU 0, so that no actor lands beside the driver"


@pytest.mark.parametrize("cloud", sorted(LAUNCHER_CONFIGS))
def test_launcher_learner_has_a_gpu_type_from_zero(cloud: str) -> None:
    config = load_yaml(LAUNCHER_CONFIGS[cloud])
    gpu_types = {name: spec for name, spec in worker_types(config).items() if spec["resources"].get("GPU", 0) >= 1}
    assert gpu_types, "no worker type has a GPU for the learner"
    for name, spec in gpu_types.items():
        assert spec.get("min_workers", 0) == 0, f"{name} keeps a GPU machine up while nothing trains"
        assert spec["max_workers"] >= 1, name
        assert spec["resources"].get("CPU", 0) >= 1, f"{name} has no CPU for the LearnerActor's 1 CPU"
        assert PLAYER_RESOURCE not in spec["resources"], f"{name} would take players onto the GPU machine"
    assert config["max_workers"] >= sum(spec["max_workers"] for spec in worker_types(config).values())


@pytest.mark.parametrize("cloud", sorted(LAUNCHER_CONFIGS))
def test_launcher_file_mounts_deliver_builds_config_and_the_project(cloud: str) -> None:
    config = load_yaml(LAUNCHER_CONFIGS[cloud])
    mounts = config["file_mounts"]
    assert mounts.get("/home/ray/builds") == "./builds"
    assert mounts.get("/home/ray/config") == "./config"
    project = {remote: local for remote, local in mounts.items() if remote.startswith("/home/ray/rayagents/")}
    assert set(project) >= {f"/home/ray/rayagents/{folder}" for folder in PROJECT_FOLDERS} | {
        "/home/ray/rayagents/pyproject.toml"
    }
    for local in project.values():
        assert (ROOT / local).exists(), f"file_mounts copies {local}, which the repository does not have"
    install = [command for command in config["setup_commands"] if "pip install" in command]
    assert install and '"rayagents[sims] @ file:///' in install[0], "setup_commands do not install rayagents[sims]"
    assert "cp -r /home/ray/rayagents " in install[0], "the install does not start from the mounted project"


@pytest.mark.parametrize("cloud", sorted(LAUNCHER_CONFIGS))
def test_launcher_keeps_token_auth_and_a_loopback_dashboard(cloud: str) -> None:
    config = load_yaml(LAUNCHER_CONFIGS[cloud])
    assert "--env RAY_AUTH_MODE=token" in config["docker"]["run_options"]
    assert config["file_mounts"].get("/home/ray/.ray/auth_token") == "~/.ray/auth_token"
    start = " ".join(config["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in start
    assert "0.0.0.0" not in start


def test_images_carry_one_ray_version_with_token_auth() -> None:
    images: list[str] = []
    for path in LAUNCHER_CONFIGS.values():
        config = load_yaml(path)
        images.append(config["docker"]["image"])
        images += [spec["docker"]["worker_image"] for spec in worker_types(config).values() if "docker" in spec]
    base = dict(re.findall(r"^ARG (\w+)=(\S+)$", DOCKERFILE.read_text(), flags=re.MULTILINE))["BASE_IMAGE"]
    images.append(base)
    versions = {version_of(image) for image in images}
    ray_versions = {tuple(int(p) for p in spec["rayVersion"].split(".")) for spec in kuberay_cluster_specs().values()}
    assert len(versions | ray_versions) == 1, f"Ray versions differ: images {sorted(images)}, rayVersion {ray_versions}"
    assert min(versions)[:2] >= TOKEN_AUTH_RAY


# ---- (b) the KubeRay manifests -------------------------------------------------------------------------------


def test_kuberay_manifests_are_the_right_kinds() -> None:
    cluster, job, claim = load_yaml(RAYCLUSTER), load_yaml(RAYJOB), load_yaml(RESULTS_PVC)
    assert (cluster["apiVersion"], cluster["kind"]) == ("ray.io/v1", "RayCluster")
    assert (job["apiVersion"], job["kind"]) == ("ray.io/v1", "RayJob")
    assert (claim["apiVersion"], claim["kind"]) == ("v1", "PersistentVolumeClaim")
    assert claim["metadata"]["name"] == RESULTS_CLAIM
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"], "pods on several nodes write the results at once"


@pytest.mark.parametrize("manifest", ["raycluster", "rayjob"])
def test_kuberay_cluster_autoscales_players_and_a_gpu_learner(manifest: str) -> None:
    spec = kuberay_cluster_specs()[manifest]
    assert spec["enableInTreeAutoscaling"] is True
    assert spec["authOptions"] == {"mode": "token"}
    head = spec["headGroupSpec"]
    assert head.get("serviceType", "ClusterIP") == "ClusterIP", "the head service (and 8265) would leave the cluster"
    assert head["rayStartParams"].get("num-cpus") == "0"

    players = group(spec, "players")
    assert kuberay_resources(players["rayStartParams"]["resources"]) == {PLAYER_RESOURCE: 1}
    assert players["minReplicas"] == 0 < players["maxReplicas"]
    assert "nvidia.com/gpu" not in pod_containers(players["template"])[0]["resources"]["limits"]

    learner = group(spec, "learner")
    limits = pod_containers(learner["template"])[0]["resources"]["limits"]
    assert int(limits.get("nvidia.com/gpu", 0)) >= 1, "the learner group requests no nvidia.com/gpu"
    assert learner["minReplicas"] == 0 < learner["maxReplicas"]
    assert "resources" not in learner["rayStartParams"], "the learner group would take players"

    templates = [head["template"], players["template"], learner["template"]]
    assert all(results_mounted(t) for t in templates), f"a pod does not mount {RESULTS_CLAIM} at {RESULTS_MOUNT}"
    assert len({pod_containers(t)[0]["image"] for t in templates}) == 1, "the pods run different images"


@pytest.mark.parametrize("manifest", ["raycluster", "rayjob"])
def test_kuberay_cluster_as_rays_autoscaler_reads_it(manifest: str) -> None:
    try:
        from ray.autoscaler._private.kuberay.autoscaling_config import _derive_autoscaling_config_from_ray_cr
    except ImportError as error:  # a private module of Ray's: it may move
        pytest.skip(f"this Ray has no KubeRay autoscaling config reader ({error})")
    custom = {"metadata": {"name": "rayagents", "namespace": "default"}, "spec": kuberay_cluster_specs()[manifest]}
    types = _derive_autoscaling_config_from_ray_cr(custom)["available_node_types"]
    assert types["headgroup"]["resources"]["CPU"] == 0
    assert types["players"]["resources"][PLAYER_RESOURCE] == 1
    cpus_per_player = parsed(rayjob_arguments()).explicit["num_cpus_per_env_actor"]
    assert types["players"]["resources"]["CPU"] >= cpus_per_player, "a players pod cannot hold one EnvActor"
    assert types["learner"]["resources"]["GPU"] == 1
    assert PLAYER_RESOURCE not in types["learner"]["resources"]


def test_kuberay_resources_form_is_checked() -> None:
    assert kuberay_resources('"{\\"unity_player\\": 1}"') == {"unity_player": 1}
    for wrong in ('{"unity_player": 1}', '"{"unity_player": 1}"', '"[1]"'):
        with pytest.raises(ValueError):
            kuberay_resources(wrong)


def test_rayjob_runs_rayagents_learn_on_the_mounted_config_build_and_results() -> None:
    job = load_yaml(RAYJOB)["spec"]
    options = parsed(rayjob_arguments())
    assert options.trainer_config_path is not None and options.trainer_config_path.startswith("/home/ray/config/")
    explicit = options.explicit
    assert str(explicit["env_path"]).startswith("/home/ray/builds/")
    assert explicit["env_actor_resources"] == {PLAYER_RESOURCE: 1.0}
    assert explicit["learner_num_gpus"] == 1.0, "auto sees no GPU while the learner group is at 0 pods"
    assert explicit["results_dir"] == RESULTS_MOUNT
    assert "address" not in explicit, "a job's driver finds its cluster through RAY_ADDRESS"
    assert job["shutdownAfterJobFinishes"] is True
    assert "clusterSelector" not in job
    runtime_env = yaml.safe_load(job["runtimeEnvYAML"])
    assert int(runtime_env["env_vars"]["RAY_JOB_STOP_WAIT_TIME_S"]) >= 30, "ray job stop would kill the save"
    head = job["rayClusterSpec"]["headGroupSpec"]["template"]
    config_volumes = [v for v in head["spec"]["volumes"] if "configMap" in v]
    mounts = {m["name"]: m["mountPath"] for m in pod_containers(head)[0]["volumeMounts"]}
    assert [mounts.get(v["name"]) for v in config_volumes] == ["/home/ray/config"]


# ---- (c) the image -------------------------------------------------------------------------------------------


def test_dockerfile_installs_the_project_and_runs_unprivileged() -> None:
    instructions = dockerfile_instructions(DOCKERFILE.read_text())
    arguments = dict(re.findall(r"^(\w+)=(\S+)$", "\n".join(a for k, a in instructions if k == "ARG"), re.MULTILINE))
    assert [a for k, a in instructions if k == "FROM"] == ["${BASE_IMAGE}"]
    assert re.fullmatch(r"rayproject/ray:[\d.]+-py311(-gpu)?", arguments["BASE_IMAGE"])

    runs = [a for k, a in instructions if k == "RUN"]
    assert any('pip install' in run and '"rayagents[sims] @ file:///home/ray/rayagents"' in run for run in runs)
    copies = [a for k, a in instructions if k == "COPY"]
    for folder in PROJECT_FOLDERS:
        assert any(c.endswith(f" {folder} /home/ray/rayagents/{folder}") for c in copies), f"{folder}/ is not copied"
    assert any("pyproject.toml" in c for c in copies)
    assert any("${BUILD_DIR}/ /home/ray/builds/" in c for c in copies) and "BUILD_DIR" in arguments

    apt = " ".join(run for run in runs if "apt-get install" in run)
    unity_libraries = {"libglu1-mesa", "libgl1", "libxcursor1", "libxrandr2", "libxinerama1", "libxi6", "libglib2.0-0"}
    assert unity_libraries <= set(apt.split()), f"missing: {sorted(unity_libraries - set(apt.split()))}"
    assert "ca-certificates" in apt.split()

    # Root only for apt: the pip install and everything after run as the image's user, and so does the image.
    users = [(i, a) for i, (k, a) in enumerate(instructions) if k == "USER"]
    assert users and users[-1][1] not in ("root", "0", "0:0"), "the image runs as root"
    pip_at = next(i for i, (k, a) in enumerate(instructions) if k == "RUN" and "pip install" in a)
    user_at_pip = [a for i, a in users if i < pip_at][-1]
    assert user_at_pip not in ("root", "0"), "rayagents is pip-installed as root"
    assert all("--chown=ray:users" in c for c in copies), "a COPY leaves root-owned files in ray's home"


def test_dockerfile_copies_paths_that_exist() -> None:
    for keyword, arguments in dockerfile_instructions(DOCKERFILE.read_text()):
        if keyword != "COPY":
            continue
        *sources, _target = [w for w in arguments.split() if not w.startswith("--")]
        for source in sources:
            if "${" not in source:
                assert (ROOT / source).exists(), f"COPY {source}: the repository has no such path"


# ---- (d) the walk-through's commands -------------------------------------------------------------------------


def test_command_extraction_finds_what_a_shell_would_run() -> None:
    script = (
        "# rayagents-learn in a comment is not a command\n"
        "RAY_AUTH_MODE=token rayagents-learn a.yaml --num-envs 2 && tensorboard --logdir results\n"
        "ray job submit --address http://127.0.0.1:8265 \\\n"
        "    -- rayagents-learn /c/b.yaml --env-actor-resources '{\"unity_player\": 1}' \\\n"
        "    --learner-num-gpus 1; echo done\n"
    )
    assert list(learn_commands(script)) == [
        (["RAY_AUTH_MODE=token"], ["a.yaml", "--num-envs", "2"]),
        (
            ["ray", "job", "submit", "--address", "http://127.0.0.1:8265", "--"],
            ["/c/b.yaml", "--env-actor-resources", '{"unity_player": 1}', "--learner-num-gpus", "1"],
        ),
    ]


def test_walkthrough_shows_a_command_for_each_way_to_run() -> None:
    commands = walkthrough_commands()
    local = [a for before, a in commands if "submit" not in before]
    submitted = [a for before, a in commands if "submit" in before]
    assert any("sim:CartPole" in a and "--address" not in a for a in local), "no laptop run"
    assert any(a[a.index("--address") + 1] == "auto" for a in local if "--address" in a), "no --address auto run"
    assert len(submitted) >= 3, "no ray job submit runs for the cloud and the RayCluster"


@pytest.mark.parametrize(
    "arguments",
    [arguments for _, arguments in walkthrough_commands()],
    ids=lambda arguments: " ".join(arguments[:3]),
)
def test_walkthrough_command_parses(arguments: list[str]) -> None:
    options = parsed(arguments)
    assert options.trainer_config_path is not None, "a walk-through run without a trainer YAML"


def test_walkthrough_cluster_commands_fit_the_deploy_configs() -> None:
    offered: set[str] = set()
    for path in LAUNCHER_CONFIGS.values():
        for spec in worker_types(load_yaml(path)).values():
            offered |= set(spec["resources"]) - {"CPU", "GPU", "memory", "object_store_memory"}
    for spec in kuberay_cluster_specs().values():
        for worker in spec["workerGroupSpecs"]:
            if "resources" in worker["rayStartParams"]:
                offered |= set(kuberay_resources(worker["rayStartParams"]["resources"]))
    submitted = 0
    for before, arguments in walkthrough_commands():
        explicit = parsed(arguments).explicit
        asked = set(explicit.get("env_actor_resources", {}))
        assert asked <= offered, f"{shlex.join(arguments)} asks for {sorted(asked - offered)}, which no node offers"
        if "submit" not in before:
            continue
        submitted += 1
        # A job runs in a temporary working directory, on a cluster whose GPU nodes may be at zero.
        assert str(explicit.get("results_dir", "")).startswith("/"), f"{shlex.join(arguments)}: relative results"
        assert "learner_num_gpus" in explicit, f"{shlex.join(arguments)}: --learner-num-gpus left to auto"
        assert asked == {PLAYER_RESOURCE}, f"{shlex.join(arguments)}: players not kept on player nodes"
        env = str(explicit["env_path"])
        assert env.startswith(("/home/ray/builds/", "sim:")), f"{env} is not where the configs put the builds"
    assert submitted > 0
