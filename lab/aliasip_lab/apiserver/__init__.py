"""The lab's embedded Kubernetes API server: the one stand-in for a real cluster.

kube-apiserver cannot be installed on the lab machine, so this package serves the part
of the Kubernetes API that aliasip's operator, agents, the Python clients and kubectl
use, as kube-apiserver does it: resourceVersion and 409 conflicts, merge/JSON/strategic
patches, server-side apply and managedFields, the status subresource, list and watch
with resume, bookmarks and 410, label and field selectors, discovery of CRDs as they are
created, CRD schema validation, Tables for ``kubectl get``, Namespaces, Nodes, Events and
Leases, and the kinds ``kubectl apply -k manifests/`` installs.

Modules, one concern each (all but ``server`` and ``runner`` are free of HTTP):
``store`` (versioned objects and history), ``journal`` (optional persistence across
restarts), ``registry`` (resource types and their strategies), ``operations`` (what each
verb does), ``patch``, ``selectors``, ``schema`` and ``formats`` (CRD validation),
``validation`` (ObjectMeta), ``table``, ``render`` (content negotiation), ``discovery``
and ``openapi``, ``builtin_schemas`` (the built-in kinds' schemas), ``apply``,
``managedfields`` and ``serverside`` (server-side apply and field ownership),
``protobuf`` (protobuf request bodies), ``errors`` (Status bodies), ``server`` (HTTP and
watch streams), ``runner`` (in a loop, on a thread, as a process). How to run it and
every known difference from kube-apiserver: ``lab/apiserver.md``.
"""

from aliasip_lab.apiserver.runner import Running, ServerThread, Settings, serve

__all__ = ["Running", "ServerThread", "Settings", "serve"]
