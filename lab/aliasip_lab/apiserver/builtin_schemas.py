"""OpenAPI v3 schemas of the built-in kinds the shipped manifests hold, as compact data.

Three readers rely on them, each as it relies on kube-apiserver's generated schemas:

- the server's decoding: a field a Go type does not have is an unknown field (400
  ``strict decoding error`` under ``fieldValidation=Strict``, a warning and dropped under
  ``Warn``), so every struct described here lists *all* fields of its Go type
  (k8s.io/api at 1.32), and nothing else;
- server-side apply (``apply.py``): ``x-kubernetes-list-type`` / ``-list-map-keys`` and
  ``x-kubernetes-map-type`` give each list and map its merge semantics, copied from the
  Go types' ``+listType``/``+listMapKey``/``+structType`` markers as the generated
  schemas carry them;
- ``kubectl explain`` and ``kubectl apply`` (``/openapi/v3``): types and
  ``x-kubernetes-patch-merge-key``/``-patch-strategy`` as in the generated schemas.

To stay small, a field whose inside the project does not use is described by name only:
``ANY`` (``x-kubernetes-preserve-unknown-fields``), which says nothing about its inside;
there nothing is rejected as unknown and server-side apply treats it as kube-apiserver
treats an untyped value (maps merged key by key, lists atomic). Every struct that *is*
described is complete, so no valid field is ever rejected.
"""

from __future__ import annotations

import copy
from typing import Any

Json = dict[str, Any]

ANY: Json = {"x-kubernetes-preserve-unknown-fields": True}
STRING: Json = {"type": "string"}
BOOL: Json = {"type": "boolean"}
INT32: Json = {"type": "integer", "format": "int32"}
INT64: Json = {"type": "integer", "format": "int64"}
INT_OR_STRING: Json = {"x-kubernetes-int-or-string": True}
QUANTITY: Json = {"x-kubernetes-int-or-string": True}
TIME: Json = {"type": "string", "format": "date-time"}
STRING_MAP: Json = {"type": "object", "additionalProperties": STRING}
QUANTITY_MAP: Json = {"type": "object", "additionalProperties": QUANTITY}
BYTES_MAP: Json = {"type": "object", "additionalProperties": {"type": "string", "format": "byte"}}


def struct(*names: str, **fields: Json) -> Json:
    """A Go struct: ``names`` are fields described by name only (``ANY``)."""
    properties: Json = {name: ANY for name in names}
    properties.update(fields)
    return {"type": "object", "properties": properties}


def atomic(schema: Json) -> Json:
    """``+structType=atomic`` / ``+mapType=atomic``: replaced as a whole, never merged."""
    return {**schema, "x-kubernetes-map-type": "atomic"}


def atomic_list(items: Json = STRING) -> Json:
    """``+listType=atomic`` (and lists without markers): replaced as a whole."""
    return {"type": "array", "items": items, "x-kubernetes-list-type": "atomic"}


def set_list(items: Json = STRING) -> Json:
    """``+listType=set``; strategic merge patch merges it too (``patchStrategy:"merge"``)."""
    return {
        "type": "array",
        "items": items,
        "x-kubernetes-list-type": "set",
        "x-kubernetes-patch-strategy": "merge",
    }


def map_list(
    items: Json, *keys: str, merge_key: str | None = None, strategy: str = "merge"
) -> Json:
    """``+listType=map`` with ``+listMapKey``s, and the strategic-merge ``patchMergeKey``."""
    schema: Json = {
        "type": "array",
        "items": items,
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": list(keys),
    }
    if merge_key is not None:
        schema["x-kubernetes-patch-merge-key"] = merge_key
        schema["x-kubernetes-patch-strategy"] = strategy
    return schema


# --------------------------------------------------------------------------- metav1

OWNER_REFERENCE = atomic(
    struct(
        "blockOwnerDeletion", "controller", apiVersion=STRING, kind=STRING, name=STRING, uid=STRING
    )
)
OBJECT_META = struct(
    "selfLink",
    name=STRING,
    generateName=STRING,
    namespace=STRING,
    uid=STRING,
    resourceVersion=STRING,
    generation=INT64,
    creationTimestamp=TIME,
    deletionTimestamp=TIME,
    deletionGracePeriodSeconds=INT64,
    labels=STRING_MAP,
    annotations=STRING_MAP,
    ownerReferences=map_list(OWNER_REFERENCE, "uid", merge_key="uid"),
    finalizers=set_list(),
    managedFields=atomic_list(ANY),
)
LABEL_SELECTOR = atomic(struct(matchLabels=STRING_MAP, matchExpressions=atomic_list(ANY)))
CONDITION = struct(
    "lastTransitionTime", "lastUpdateTime", "lastProbeTime", "observedGeneration",
    type=STRING, status=STRING, reason=STRING, message=STRING,
)  # fmt: skip
CONDITIONS = map_list(CONDITION, "type", merge_key="type")

# --------------------------------------------------------------------------- core/v1 pods

CAPABILITIES = struct(add=atomic_list(), drop=atomic_list())
SECCOMP_PROFILE = struct(type=STRING, localhostProfile=STRING)
CONTAINER_SECURITY = struct(
    "seLinuxOptions",
    "windowsOptions",
    "procMount",
    "appArmorProfile",
    capabilities=CAPABILITIES,
    privileged=BOOL,
    runAsUser=INT64,
    runAsGroup=INT64,
    runAsNonRoot=BOOL,
    readOnlyRootFilesystem=BOOL,
    allowPrivilegeEscalation=BOOL,
    seccompProfile=SECCOMP_PROFILE,
)
POD_SECURITY = struct(
    "seLinuxOptions",
    "windowsOptions",
    "supplementalGroupsPolicy",
    "fsGroupChangePolicy",
    "appArmorProfile",
    "seLinuxChangePolicy",
    runAsUser=INT64,
    runAsGroup=INT64,
    runAsNonRoot=BOOL,
    supplementalGroups=atomic_list(INT64),
    fsGroup=INT64,
    sysctls=atomic_list(ANY),
    seccompProfile=SECCOMP_PROFILE,
)
FIELD_REF = atomic(struct(apiVersion=STRING, fieldPath=STRING))
ENV_VAR = struct(
    name=STRING,
    value=STRING,
    valueFrom=struct("resourceFieldRef", "configMapKeyRef", "secretKeyRef", fieldRef=FIELD_REF),
)
CONTAINER_PORT = struct(
    name=STRING,
    hostPort=INT32,
    containerPort=INT32,
    protocol={"type": "string", "default": "TCP"},
    hostIP=STRING,
)
VOLUME_MOUNT = struct(
    "recursiveReadOnly", "mountPropagation",
    name=STRING, readOnly=BOOL, mountPath=STRING, subPath=STRING, subPathExpr=STRING,
)  # fmt: skip
HTTP_GET = struct(
    path=STRING, port=INT_OR_STRING, host=STRING, scheme=STRING, httpHeaders=atomic_list(ANY)
)
PROBE = struct(
    "exec",
    "tcpSocket",
    "grpc",
    httpGet=HTTP_GET,
    initialDelaySeconds=INT32,
    timeoutSeconds=INT32,
    periodSeconds=INT32,
    successThreshold=INT32,
    failureThreshold=INT32,
    terminationGracePeriodSeconds=INT64,
)
RESOURCES = struct(limits=QUANTITY_MAP, requests=QUANTITY_MAP, claims=map_list(ANY, "name"))
CONTAINER = struct(
    "lifecycle",
    "terminationMessagePath",
    "terminationMessagePolicy",
    "stdin",
    "stdinOnce",
    "tty",
    "restartPolicy",
    name=STRING,
    image=STRING,
    command=atomic_list(),
    args=atomic_list(),
    workingDir=STRING,
    ports=map_list(CONTAINER_PORT, "containerPort", "protocol", merge_key="containerPort"),
    envFrom=atomic_list(ANY),
    env=map_list(ENV_VAR, "name", merge_key="name"),
    resources=RESOURCES,
    resizePolicy=atomic_list(ANY),
    volumeMounts=map_list(VOLUME_MOUNT, "mountPath", merge_key="mountPath"),
    volumeDevices=map_list(ANY, "devicePath", merge_key="devicePath"),
    livenessProbe=PROBE,
    readinessProbe=PROBE,
    startupProbe=PROBE,
    imagePullPolicy=STRING,
    securityContext=CONTAINER_SECURITY,
)
VOLUME_SOURCES = (
    "hostPath", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "nfs", "iscsi",
    "glusterfs", "persistentVolumeClaim", "rbd", "flexVolume", "cinder", "cephfs", "flocker",
    "downwardAPI", "fc", "azureFile", "configMap", "vsphereVolume", "quobyte", "azureDisk",
    "photonPersistentDisk", "projected", "portworxVolume", "scaleIO", "storageos", "csi",
    "ephemeral", "image",
)  # fmt: skip
VOLUME = struct(
    *VOLUME_SOURCES,
    name=STRING,
    emptyDir=struct(medium=STRING, sizeLimit=QUANTITY),
    secret=struct(secretName=STRING, items=atomic_list(ANY), defaultMode=INT32, optional=BOOL),
)
TOLERATION = struct(
    key=STRING, operator=STRING, value=STRING, effect=STRING, tolerationSeconds=INT64
)
POD_AFFINITY_TERM = struct(
    labelSelector=LABEL_SELECTOR,
    namespaces=atomic_list(),
    topologyKey=STRING,
    namespaceSelector=LABEL_SELECTOR,
    matchLabelKeys=atomic_list(),
    mismatchLabelKeys=atomic_list(),
)
POD_AFFINITY = struct(
    requiredDuringSchedulingIgnoredDuringExecution=atomic_list(POD_AFFINITY_TERM),
    preferredDuringSchedulingIgnoredDuringExecution=atomic_list(ANY),
)
POD_SPEC = struct(
    "restartPolicy",
    "activeDeadlineSeconds",
    "serviceAccount",
    "automountServiceAccountToken",
    "nodeName",
    "hostPID",
    "hostIPC",
    "shareProcessNamespace",
    "hostname",
    "subdomain",
    "schedulerName",
    "priority",
    "dnsConfig",
    "runtimeClassName",
    "enableServiceLinks",
    "preemptionPolicy",
    "overhead",
    "setHostnameAsFQDN",
    "os",
    "hostUsers",
    "resources",
    volumes=map_list(VOLUME, "name", merge_key="name", strategy="merge,retainKeys"),
    initContainers=map_list(CONTAINER, "name", merge_key="name"),
    containers=map_list(CONTAINER, "name", merge_key="name"),
    ephemeralContainers=map_list(ANY, "name", merge_key="name"),
    terminationGracePeriodSeconds=INT64,
    dnsPolicy=STRING,
    nodeSelector={**STRING_MAP, "x-kubernetes-map-type": "atomic"},
    serviceAccountName=STRING,
    hostNetwork=BOOL,
    securityContext=POD_SECURITY,
    imagePullSecrets=map_list(ANY, "name", merge_key="name"),
    affinity=struct("nodeAffinity", podAffinity=POD_AFFINITY, podAntiAffinity=POD_AFFINITY),
    tolerations=atomic_list(TOLERATION),
    hostAliases=map_list(ANY, "ip", merge_key="ip"),
    priorityClassName=STRING,
    readinessGates=atomic_list(ANY),
    topologySpreadConstraints=map_list(
        ANY, "topologyKey", "whenUnsatisfiable", merge_key="topologyKey"
    ),
    schedulingGates=map_list(ANY, "name", merge_key="name"),
    resourceClaims=map_list(ANY, "name", merge_key="name", strategy="merge,retainKeys"),
)
POD_TEMPLATE = struct(metadata=OBJECT_META, spec=POD_SPEC)
ROLLING_UPDATE = struct(maxUnavailable=INT_OR_STRING, maxSurge=INT_OR_STRING)


def kind(**fields: Json) -> Json:
    """A top-level kind: apiVersion, kind and metadata, then its own fields."""
    return struct(apiVersion=STRING, kind=STRING, metadata=OBJECT_META, **fields)


# --------------------------------------------------------------------------- the kinds

POLICY_RULE = struct(
    verbs=atomic_list(),
    apiGroups=atomic_list(),
    resources=atomic_list(),
    resourceNames=atomic_list(),
    nonResourceURLs=atomic_list(),
)
ROLE_REF = atomic(struct(apiGroup=STRING, kind=STRING, name=STRING))
SUBJECT = atomic(struct(kind=STRING, apiGroup=STRING, name=STRING, namespace=STRING))
BINDING = kind(subjects=atomic_list(SUBJECT), roleRef=ROLE_REF)

SCHEMAS: dict[tuple[str, str, str], Json] = {
    ("", "v1", "Namespace"): kind(
        spec=struct(finalizers=atomic_list()),
        status=struct(phase=STRING, conditions=CONDITIONS),
    ),
    ("", "v1", "ServiceAccount"): kind(
        secrets=map_list(ANY, "name", merge_key="name"),
        imagePullSecrets=atomic_list(ANY),
        automountServiceAccountToken=BOOL,
    ),
    ("", "v1", "Secret"): kind(immutable=BOOL, data=BYTES_MAP, stringData=STRING_MAP, type=STRING),
    ("", "v1", "ConfigMap"): kind(immutable=BOOL, data=STRING_MAP, binaryData=BYTES_MAP),
    ("", "v1", "Pod"): kind(spec=POD_SPEC, status=ANY),
    ("rbac.authorization.k8s.io", "v1", "Role"): kind(rules=atomic_list(POLICY_RULE)),
    ("rbac.authorization.k8s.io", "v1", "ClusterRole"): kind(
        rules=atomic_list(POLICY_RULE), aggregationRule=ANY
    ),
    ("rbac.authorization.k8s.io", "v1", "RoleBinding"): BINDING,
    ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding"): BINDING,
    ("apps", "v1", "Deployment"): kind(
        spec=struct(
            replicas=INT32,
            selector=LABEL_SELECTOR,
            template=POD_TEMPLATE,
            strategy=struct(type=STRING, rollingUpdate=ROLLING_UPDATE),
            minReadySeconds=INT32,
            revisionHistoryLimit=INT32,
            paused=BOOL,
            progressDeadlineSeconds=INT32,
        ),
        status=struct(
            "collisionCount",
            observedGeneration=INT64,
            replicas=INT32,
            updatedReplicas=INT32,
            readyReplicas=INT32,
            availableReplicas=INT32,
            unavailableReplicas=INT32,
            conditions=CONDITIONS,
        ),
    ),
    ("apps", "v1", "DaemonSet"): kind(
        spec=struct(
            selector=LABEL_SELECTOR,
            template=POD_TEMPLATE,
            updateStrategy=struct(type=STRING, rollingUpdate=ROLLING_UPDATE),
            minReadySeconds=INT32,
            revisionHistoryLimit=INT32,
        ),
        status=struct(
            "collisionCount",
            currentNumberScheduled=INT32,
            numberMisscheduled=INT32,
            desiredNumberScheduled=INT32,
            numberReady=INT32,
            observedGeneration=INT64,
            updatedNumberScheduled=INT32,
            numberAvailable=INT32,
            numberUnavailable=INT32,
            conditions=CONDITIONS,
        ),
    ),
    ("policy", "v1", "PodDisruptionBudget"): kind(
        spec=struct(
            minAvailable=INT_OR_STRING,
            selector={**LABEL_SELECTOR, "x-kubernetes-patch-strategy": "replace"},
            maxUnavailable=INT_OR_STRING,
            unhealthyPodEvictionPolicy=STRING,
        ),
        status=struct(
            "disruptedPods",
            observedGeneration=INT64,
            disruptionsAllowed=INT32,
            currentHealthy=INT32,
            desiredHealthy=INT32,
            expectedPods=INT32,
            conditions=CONDITIONS,
        ),
    ),
    ("admissionregistration.k8s.io", "v1", "ValidatingAdmissionPolicy"): kind(
        spec=struct(
            "paramKind",
            "matchConstraints",
            failurePolicy=STRING,
            validations=atomic_list(ANY),
            auditAnnotations=atomic_list(ANY),
            matchConditions=map_list(ANY, "name", merge_key="name"),
            variables=atomic_list(ANY),
        ),
        status=ANY,
    ),
    ("admissionregistration.k8s.io", "v1", "ValidatingAdmissionPolicyBinding"): kind(
        spec=struct(
            "paramRef",
            "matchResources",
            policyName=STRING,
            validationActions=set_list(),
        ),
    ),
}


def schema_for(group: str, version: str, kind_name: str) -> Json | None:
    """A private copy of the kind's schema, or None for kinds described by no schema."""
    found = SCHEMAS.get((group, version, kind_name))
    return copy.deepcopy(found) if found is not None else None
