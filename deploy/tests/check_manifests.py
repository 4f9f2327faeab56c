#!/usr/bin/env python3
"""Checks of deploy/: both overlays render, validate offline against the
Kubernetes schemas, and agree with the code (every FOLIO__ variable is one a
service reads; ports, probes and images match the services' defaults); the
Dockerfile runs as non-root from pinned bases. Prints `N passed, M failed`."""

import pathlib
import re
import subprocess
import sys

import json

import jsonschema
import kubernetes_validate
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
OVERLAYS = ["dev", "prod"]
K8S_VERSION = "1.33"
results = []


def check(name, fn):
    try:
        fn()
        results.append((name, None))
    except Exception as error:  # noqa: BLE001 - every failure is reported, none hides another
        results.append((name, error))


# cert-manager's and CloudNativePG's CRDs as JSON Schema, kept in the
# repository (see deploy/tests/schemas/SOURCE.md): custom resources validate
# offline too.
CRD_SCHEMAS = ROOT / "deploy/tests/schemas"
CRD_GROUPS = ("cert-manager.io", "postgresql.cnpg.io")


def validate_doc(doc):
    group, _, version = doc["apiVersion"].rpartition("/")
    if group.endswith(CRD_GROUPS):
        path = CRD_SCHEMAS / group / f"{doc['kind'].lower()}_{version}.json"
        assert path.exists(), f"no schema kept for {doc['apiVersion']} {doc['kind']}"
        jsonschema.validate(doc, json.loads(path.read_text()))
    else:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def assert_schema_refuses_typo(doc, field):
    """The kept schemas are enforced: `doc` with a misspelt spec field fails."""
    broken = json.loads(json.dumps(doc))
    broken["spec"][field] = broken["spec"].get(field, 1)
    try:
        validate_doc(broken)
    except jsonschema.ValidationError:
        return
    raise AssertionError(f"a {doc['kind']} with the unknown field {field} validated")


def render(overlay):
    out = subprocess.run(
        ["kubectl", "kustomize", str(ROOT / "deploy/k8s/overlays" / overlay)],
        check=True, capture_output=True, text=True,
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def config_keys():
    """Every configuration key the Rust code reads, as `section.key` paths."""
    sources = {
        ROOT / "crates/runtime/src/config.rs": {
            "CommonConfig": "", "ServerSettings": "server", "UpstreamSettings": "upstreams",
        },
        ROOT / "crates/storage/src/db.rs": {"DatabaseSettings": "database"},
        ROOT / "crates/storage/src/cache.rs": {"RedisSettings": "redis"},
        ROOT / "crates/telemetry/src/lib.rs": {"TelemetrySettings": "telemetry"},
        ROOT / "crates/tokens/src/remote.rs": {"ServiceClientSettings": "service_client"},
        ROOT / "crates/tls/src/client.rs": {"ClientTlsSettings": "client"},
        ROOT / "services/auth/src/settings.rs": {"AuthSettings": "auth"},
        ROOT / "services/ledger/src/settings.rs": {"LedgerSettings": "ledger"},
        ROOT / "services/account/src/lib.rs": {"AccountSettings": "account"},
        ROOT / "services/gateway/src/settings.rs": {"GatewaySettings": "gateway", "RateLimitSettings": "gateway.rate_limit"},
    }
    keys = set()
    for path, structs in sources.items():
        text = path.read_text()
        for struct, prefix in structs.items():
            body = re.search(r"pub struct " + struct + r" \{(.*?)\n\}", text, re.S)
            assert body, f"{struct} not found in {path}"
            for field in re.findall(r"pub (\w+):", body.group(1)):
                keys.add(f"{prefix}.{field}" if prefix else field)
    return keys


def default_ports():
    text = (ROOT / "crates/runtime/src/config.rs").read_text()
    return {name: (int(g), int(a)) for name, g, a in re.findall(r'"(\w+)" => \((\d+), (\d+)\)', text)}


def folio_deployments(docs):
    return [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"].startswith("folio-")
            and d["metadata"]["name"] not in ("folio-postgres", "folio-redis")]


def env_names(container, docs):
    names = [e["name"] for e in container.get("env", [])]
    for source in container.get("envFrom", []):
        ref = source.get("configMapRef", {}).get("name")
        for doc in docs:
            if doc["kind"] == "ConfigMap" and doc["metadata"]["name"].startswith(ref or "\0"):
                names.extend(doc.get("data", {}).keys())
    return names


def main():
    keys = config_keys()
    ports = default_ports()
    rendered = {}
    for overlay in OVERLAYS:
        def render_it(overlay=overlay):
            rendered[overlay] = render(overlay)
            assert len(rendered[overlay]) > 20, "too few objects rendered"
        check(f"{overlay}: kustomize renders", render_it)
    for overlay, docs in rendered.items():
        def validate(docs=docs):
            for doc in docs:
                validate_doc(doc)
        check(f"{overlay}: manifests validate against Kubernetes {K8S_VERSION}", validate)

        def env_is_read(docs=docs):
            for deployment in folio_deployments(docs):
                spec = deployment["spec"]["template"]["spec"]
                for container in spec.get("initContainers", []) + spec["containers"]:
                    for name in env_names(container, docs):
                        if not name.startswith("FOLIO__"):
                            continue
                        key = ".".join(part.lower() for part in name[len("FOLIO__"):].split("__"))
                        assert key in keys, f"{deployment['metadata']['name']} sets {name}, which no service reads"
        check(f"{overlay}: every FOLIO__ variable is read by the code", env_is_read)

        def ports_match(docs=docs):
            services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
            for deployment in folio_deployments(docs):
                name = deployment["metadata"]["name"]
                grpc, admin = ports[name.removeprefix("folio-")]
                container = deployment["spec"]["template"]["spec"]["containers"][0]
                declared = {p["name"]: p["containerPort"] for p in container["ports"]}
                assert declared == {"grpc": grpc, "admin": admin}, f"{name} ports {declared}"
                env = {e["name"]: e.get("value") for e in container["env"]}
                assert env["FOLIO__SERVER__LISTEN_ADDR"].endswith(f":{grpc}"), name
                assert env["FOLIO__SERVER__ADMIN_ADDR"].endswith(f":{admin}"), name
                tls = "FOLIO__SERVER__TLS_CERT_FILE" in env
                for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                    if tls:  # kubelet's gRPC probe speaks no TLS: the admin port's /healthz
                        assert "grpc" not in container[probe], f"{name} {probe} probes a TLS port over gRPC"
                        assert container[probe]["httpGet"] == {"path": "/healthz", "port": admin}, f"{name} {probe}"
                    else:
                        assert container[probe]["grpc"]["port"] == grpc, f"{name} {probe}"
                service_ports = {p["name"]: p["port"] for p in services[name]["spec"]["ports"]}
                assert service_ports == {"grpc": grpc, "admin": admin}, f"{name} Service ports {service_ports}"
        check(f"{overlay}: ports and probes match the services' defaults", ports_match)

        def encryption(docs=docs, overlay=overlay):
            certificates = {d["spec"]["secretName"]: d for d in docs if d["kind"] == "Certificate"}
            issuers = {d["metadata"]["name"] for d in docs if d["kind"] == "Issuer"}
            for deployment in folio_deployments(docs):
                name = deployment["metadata"]["name"]
                spec = deployment["spec"]["template"]["spec"]
                env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
                if overlay == "dev":  # plaintext by design: kubectl port-forward on a developer's cluster
                    assert not any(k.startswith(("FOLIO__SERVER__TLS", "FOLIO__CLIENT__TLS")) for k in env), name
                    continue
                wanted = ["FOLIO__SERVER__TLS_CERT_FILE", "FOLIO__SERVER__TLS_KEY_FILE", "FOLIO__CLIENT__TLS_CA_FILE",
                          "FOLIO__CLIENT__TLS_CERT_FILE", "FOLIO__CLIENT__TLS_KEY_FILE"]
                if name != "folio-gateway":  # internal ports: mutual TLS
                    wanted.append("FOLIO__SERVER__TLS_CLIENT_CA_FILE")
                missing = [k for k in wanted if k not in env]
                assert not missing, f"{name} lacks {missing}"
                mounts = {m["mountPath"]: m["name"] for m in spec["containers"][0].get("volumeMounts", [])}
                secrets = {v["name"]: v["secret"]["secretName"] for v in spec.get("volumes", []) if "secret" in v}
                for key in wanted:
                    directory = env[key].rsplit("/", 1)[0]
                    secret = secrets[mounts[directory]]
                    assert secret in certificates, f"{name}: {key} is not from a cert-manager Certificate"
                identity = certificates[secrets[mounts[env["FOLIO__CLIENT__TLS_CERT_FILE"].rsplit("/", 1)[0]]]]
                service = name.removeprefix("folio-")
                assert identity["spec"]["uris"] == [f"spiffe://folio/{service}"], f"{name} identity"
                assert f"{name}" in identity["spec"]["dnsNames"], f"{name}: the Service name is not in its certificate"
                assert identity["spec"]["issuerRef"]["name"] in issuers, f"{name}: unknown issuer"
            if certificates:
                assert_schema_refuses_typo(next(iter(certificates.values())), "dnsName")
        check(f"{overlay}: every hop encrypted (prod) or plaintext by design (dev)", encryption)

        def postgres(docs=docs, overlay=overlay):
            clusters = [d for d in docs if d["kind"] == "Cluster"]
            if overlay == "dev":  # a developer's own PostgreSQL (database-url)
                assert not clusters, "dev runs no CloudNativePG cluster"
                return
            [cluster] = clusters
            spec = cluster["spec"]
            assert spec["instances"] >= 3, "a primary and two standbys"
            sync = spec["postgresql"]["synchronous"]
            assert sync["method"] == "any" and sync["number"] >= 1 and sync["dataDurability"] == "required", sync
            poolers = {d["spec"]["type"]: d for d in docs if d["kind"] == "Pooler"}
            assert set(poolers) == {"rw", "ro"}, f"poolers {sorted(poolers)}"
            budget = 0
            roles = [r["name"] for r in spec["managed"]["roles"]]
            for kind, pooler in poolers.items():
                bouncer = pooler["spec"]["pgbouncer"]
                assert pooler["spec"]["cluster"]["name"] == cluster["metadata"]["name"], kind
                assert bouncer["poolMode"] == "transaction", kind
                assert int(bouncer["parameters"]["max_prepared_statements"]) > 0, f"{kind}: named statements"
                if kind == "rw":
                    budget += pooler["spec"]["instances"] * len(roles) * int(bouncer["parameters"]["default_pool_size"])
            # No session state through the pooler: each role's search_path is its schema.
            init = " ".join(spec["bootstrap"]["initdb"]["postInitApplicationSQL"])
            for role in roles:
                schema = role.removeprefix("folio_")
                assert f"ALTER ROLE {role} SET search_path = {schema}" in init, role
            deployments = {d["metadata"]["name"]: d for d in folio_deployments(docs)}
            for service in ("auth", "account", "ledger"):
                pod = deployments[f"folio-{service}"]["spec"]["template"]["spec"]

                def key(container, name):
                    [entry] = [e for e in container["env"] if e["name"] == name]
                    return entry["valueFrom"]["secretKeyRef"]["key"]
                [migrate] = pod["initContainers"]
                main_container = pod["containers"][0]
                assert key(migrate, "FOLIO__DATABASE__URL") == f"{service}-direct-database-url", service
                assert key(main_container, "FOLIO__DATABASE__URL") == f"{service}-database-url", service
                if service != "auth":
                    assert key(main_container, "FOLIO__DATABASE__READ_URL") == f"{service}-read-database-url", service
                if service == "ledger":
                    writers = 2
                    budget += deployments["folio-ledger"]["spec"]["replicas"] * writers
                    key(main_container, "FOLIO__LEDGER__WRITER_DATABASE_URL")
            limit = int(spec["postgresql"]["parameters"]["max_connections"])
            assert budget + 3 + 10 <= limit, f"{budget} connections on the primary (+ reserved) exceed {limit}"
            assert_schema_refuses_typo(cluster, "instance")
        check(f"{overlay}: PostgreSQL on CloudNativePG: replicas, poolers, roles, budget (prod)", postgres)

        def images_and_security(docs=docs):
            images = set()
            for deployment in folio_deployments(docs):
                name = deployment["metadata"]["name"]
                spec = deployment["spec"]["template"]["spec"]
                assert spec["securityContext"]["runAsNonRoot"] is True, name
                assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
                assert spec["terminationGracePeriodSeconds"] > 25, f"{name}: grace must exceed preStop + drain"
                for container in spec.get("initContainers", []) + spec["containers"]:
                    images.add(container["image"])
                    assert container["command"][0] == f"/usr/local/bin/{name}", f"{name} runs {container['command']}"
                    context = container["securityContext"]
                    assert context["readOnlyRootFilesystem"] is True and context["capabilities"]["drop"] == ["ALL"], name
                    assert "resources" in container and "limits" in container["resources"], name
            assert len(images) == 1, f"the Folio containers use several images: {images}"
            image = images.pop()
            assert re.fullmatch(r"ghcr\.io/folio/folio:[\w.-]+", image) and not image.endswith(":latest"), image
        check(f"{overlay}: one pinned image, non-root, read-only, no capabilities", images_and_security)

        def secrets_not_real(docs=docs, overlay=overlay):
            secrets = [d for d in docs if d["kind"] == "Secret"]
            if overlay == "prod":
                assert not secrets, "prod must reference secrets, not carry them"
        check(f"{overlay}: no real secrets committed", secrets_not_real)

    def dockerfile():
        text = (ROOT / "deploy/docker/Dockerfile").read_text()
        stages = re.findall(r"^FROM\s+(\S+)", text, re.M)
        assert stages, "no FROM"
        for image in stages:
            if image in ("chef", "planner", "build"):
                continue
            assert ":" in image and not image.endswith(":latest"), f"unpinned base image {image}"
        final = text[text.rfind("\nFROM"):]
        users = re.findall(r"^USER\s+(\S+)", final, re.M)
        assert users and users[-1].split(":")[0] not in ("root", "0"), f"the runtime stage runs as {users}"
    check("Dockerfile: pinned bases, non-root user", dockerfile)

    failed = [(name, error) for name, error in results if error]
    for name, error in results:
        print(f"{'FAIL' if error else 'PASS'} {name}" + (f": {error}" if error else ""))
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
