package shards

import (
	"bytes"
	"os"
	"reflect"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
)

func build(t *testing.T, o Options) *Set {
	t.Helper()
	if o.Image == "" {
		o.Image = "mqttfleet/mqttfleet:dev"
	}
	if o.Profile == nil {
		o.Profile = []byte("name: x\ngroups: [{name: d, count: 10}]\n")
	}
	s, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The manifests read back, strictly, into the same objects: the YAML is
// what the k8s.io/api types say it is.
func TestManifestsRoundTrip(t *testing.T) {
	s := build(t, Options{Shards: 4})
	y, err := s.YAML()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(y)
	if err != nil {
		t.Fatalf("parse what Build wrote: %v\n%s", err, y)
	}
	if !reflect.DeepEqual(back.Job, s.Job) || !reflect.DeepEqual(back.ConfigMap, s.ConfigMap) ||
		!reflect.DeepEqual(back.Broker, s.Broker) || !reflect.DeepEqual(back.Service, s.Service) {
		t.Fatal("objects differ after a YAML round trip")
	}
	j := back.Job.Spec
	if *j.CompletionMode != batchv1.IndexedCompletion || *j.Completions != 4 || *j.Parallelism != 4 {
		t.Errorf("job: mode %v completions %d parallelism %d", *j.CompletionMode, *j.Completions, *j.Parallelism)
	}
	c := j.Template.Spec.Containers[0]
	args := strings.Join(c.Args, " ")
	for _, want := range []string{"--shards 4", "--results /results/shard-{index}.json", "--broker mqttfleet-broker.default.svc:1883"} {
		if !strings.Contains(args, want) {
			t.Errorf("args %q lack %q", args, want)
		}
	}
	if len(c.Env) != 1 || c.Env[0].Name != "JOB_COMPLETION_INDEX" {
		t.Errorf("env %+v", c.Env)
	}
}

func TestExternalBrokerHasNoDeployment(t *testing.T) {
	s := build(t, Options{Shards: 2, Broker: "mqtt.example:1883"})
	if s.Broker != nil || s.Service != nil {
		t.Fatal("a broker was deployed though one was given")
	}
	if !strings.Contains(strings.Join(s.Job.Spec.Template.Spec.Containers[0].Args, " "), "--broker mqtt.example:1883") {
		t.Error("the Job does not use the given broker")
	}
}

func TestParseRefuses(t *testing.T) {
	y, err := build(t, Options{Shards: 2}).YAML()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ from, to, want string }{
		{"completionMode: Indexed", "completionMode: Indexed\n  completionz: 3", `unknown field "completionz"`},
		{"completionMode: Indexed", "completionMode: NonIndexed", "Indexed Job"},
		{"kind: Service", "kind: Pod", `kind "Pod"`},
	} {
		bad := bytes.Replace(y, []byte(tc.from), []byte(tc.to), 1)
		if _, err := Parse(bad); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s -> %s: %v, want an error naming %q", tc.from, tc.to, err, tc.want)
		}
	}
	if _, err := Build(Options{Shards: 0, Image: "i", Profile: []byte("x")}); err == nil {
		t.Error("0 shards accepted")
	}
	if _, err := Build(Options{Shards: 2, Profile: []byte("x")}); err == nil {
		t.Error("no image accepted")
	}
}

// deploy/k8s/fleet.yaml is what `shards manifests` makes from
// deploy/k8s/fleet-profile.yaml with 4 shards: the committed file stays in
// step with the code and passes the strict parse.
func TestCommittedManifests(t *testing.T) {
	committed, err := os.ReadFile("../deploy/k8s/fleet.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(committed); err != nil {
		t.Fatalf("deploy/k8s/fleet.yaml: %v", err)
	}
	profile, err := os.ReadFile("../deploy/k8s/fleet-profile.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Build(Options{Shards: 4, Image: "mqttfleet/mqttfleet:dev", Profile: profile})
	if err != nil {
		t.Fatal(err)
	}
	y, _ := s.YAML()
	if !bytes.Equal(y, committed) {
		t.Error("deploy/k8s/fleet.yaml is stale: make k8s-manifests")
	}
}
