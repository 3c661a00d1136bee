"""aliasip operator: decides which node holds each AliasIP's addresses.

The decision is a pure function of observed state (``decide``); kopf glue only feeds it
observations and writes its result to ``status``. This package never imports pyroute2
or scapy: it changes nothing on any node itself.
"""
