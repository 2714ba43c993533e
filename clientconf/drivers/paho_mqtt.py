#!/usr/bin/python3
"""Drives Python paho-mqtt (Debian's python3-paho-mqtt) for mqttfleet's
client conformance suite. The job is a JSON object in argv[1] (see Job in
clientconf/driver.go); every message the library hands to the application
is printed as a JSON line on stdout. SIGTERM ends the job: with a DISCONNECT
when the job asks for one, else by dropping the socket. The library's own
keepalive, reconnect delays and resend logic are what gets graded, so this
script never pings, retries or acks on its behalf."""

import json
import os
import signal
import sys
import threading
import time

import paho.mqtt.client as mqtt

job = json.loads(sys.argv[1])
v5 = job.get("protocol") == 5
host, port = job["addr"].rsplit(":", 1)
lock = threading.Lock()
first = threading.Event()


def out(obj):
    with lock:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


if v5:
    c = mqtt.Client(client_id=job["client_id"], protocol=mqtt.MQTTv5)
else:
    c = mqtt.Client(client_id=job["client_id"], clean_session=job["clean"], protocol=mqtt.MQTTv311)
c.reconnect_delay_set(min_delay=1, max_delay=8)
if job.get("username"):
    c.username_pw_set(job["username"], job.get("password") or None)
w = job.get("will")
if w:
    c.will_set(w["topic"], w["payload"], w["qos"], w["retain"])


def on_connect(client, userdata, flags, rc, properties=None):
    if rc != 0:
        return
    subs = [(s["filter"], s["qos"]) for s in job.get("subscribe") or []]
    if subs:
        client.subscribe(subs)
    if not first.is_set():
        first.set()
        threading.Thread(target=publish, daemon=True).start()


def on_subscribe(client, userdata, mid, granted, properties=None):
    if job.get("unsubscribe"):
        client.unsubscribe(job["unsubscribe"])


def on_message(client, userdata, m):
    out({"topic": m.topic, "qos": m.qos, "retain": bool(m.retain), "payload": m.payload.decode("utf-8", "replace")})


def on_disconnect(client, userdata, rc, properties=None):
    if not job.get("reconnect"):
        client.disconnect()  # ends loop_forever: no reconnect


def publish():
    infos = [c.publish(m["topic"], m["payload"], m["qos"], m["retain"]) for m in job.get("publish") or []]
    if job.get("disconnect_early"):
        for i in infos:
            i.wait_for_publish(30)
        c.disconnect()
        return
    every = job.get("publish_every_ms")
    while every:
        time.sleep(every / 1000.0)
        c.publish(job["topic"], "busy", 0)


def on_term(signum, frame):
    if job.get("disconnect"):
        c.disconnect()
    else:
        os._exit(0)


c.on_connect = on_connect
c.on_subscribe = on_subscribe
c.on_message = on_message
c.on_disconnect = on_disconnect
signal.signal(signal.SIGTERM, on_term)
try:
    if v5:
        c.connect(host, int(port), keepalive=job["keepalive_s"], clean_start=job["clean"])
    else:
        c.connect(host, int(port), keepalive=job["keepalive_s"])
    c.loop_forever(retry_first_connection=bool(job.get("reconnect")))
except Exception as e:  # the suite grades the wire; this is for its log
    print("driver: %s" % e, file=sys.stderr)
