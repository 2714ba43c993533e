// Package shards takes a fleet past one machine: it builds the Kubernetes
// objects that run a fleet as an Indexed Job (one pod per shard, each
// reading its index from $JOB_COMPLETION_INDEX), from the k8s.io/api types
// so they are schema-checked where they are made, and rehearses such a Job
// on this machine: the same command lines, one process per index, then one
// merged report (docs/simulator.md, "Fleets past one machine").
package shards

import (
	"bytes"
	"fmt"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// Paths inside the pods.
const (
	ProfileDir  = "/etc/mqttfleet"     // the ConfigMap with the fleet profile
	ResultsDir  = "/results"           // where each shard writes shard-<index>.json
	ProfileFile = "fleet.yaml"         // the ConfigMap key
	BrokerPort  = 1883                 // the broker Service's port
	Binary      = "/usr/bin/mqttfleet" // the binary in the image
)

// Options describe the fleet and where it runs.
type Options struct {
	Name      string // prefix of every object (default "mqttfleet")
	Namespace string // default "default"
	Image     string // the image holding /usr/bin/mqttfleet
	Shards    int    // pods of the Job, one shard each
	// Profile is the fleet profile (YAML) the ConfigMap carries; every
	// shard runs its own slice of its devices.
	Profile []byte
	// Broker is the address the shards connect to; empty deploys the
	// reference broker (Deployment + Service) and uses its Service.
	Broker string
	// RunID is shared by every shard, so `report merge` keys them as one run.
	RunID string
	// ResultsClaim is the PersistentVolumeClaim mounted at /results
	// (ReadWriteMany); empty mounts an emptyDir and each pod also prints
	// its results file to stdout for the runner to collect.
	ResultsClaim string
	// CPU and Memory are each shard pod's requests (defaults 1 and 1Gi).
	CPU, Memory string
}

func (o *Options) defaults() error {
	if o.Name == "" {
		o.Name = "mqttfleet"
	}
	if o.Namespace == "" {
		o.Namespace = "default"
	}
	if o.Image == "" {
		return fmt.Errorf("shards: an image holding %s is needed", Binary)
	}
	if o.Shards < 1 {
		return fmt.Errorf("shards: %d shards: want at least 1", o.Shards)
	}
	if len(o.Profile) == 0 {
		return fmt.Errorf("shards: a fleet profile is needed")
	}
	if o.RunID == "" {
		o.RunID = o.Name + "-run"
	}
	if o.CPU == "" {
		o.CPU = "1"
	}
	if o.Memory == "" {
		o.Memory = "1Gi"
	}
	for _, q := range []string{o.CPU, o.Memory} {
		if _, err := resource.ParseQuantity(q); err != nil {
			return fmt.Errorf("shards: resource %q: %w", q, err)
		}
	}
	return nil
}

// Set is the objects of one sharded fleet.
type Set struct {
	ConfigMap *corev1.ConfigMap
	Job       *batchv1.Job
	// Broker and Service are nil when Options.Broker names a broker.
	Broker  *appsv1.Deployment
	Service *corev1.Service
}

// Build makes the objects.
func Build(o Options) (*Set, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	meta := func(name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: o.Namespace, Labels: map[string]string{"app.kubernetes.io/part-of": o.Name}}
	}
	set := &Set{}
	set.ConfigMap = &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: meta(o.Name + "-profile"),
		Data:       map[string]string{ProfileFile: string(o.Profile)},
	}
	broker := o.Broker
	if broker == "" {
		name := o.Name + "-broker"
		broker = fmt.Sprintf("%s.%s.svc:%d", name, o.Namespace, BrokerPort)
		labels := map[string]string{"app.kubernetes.io/name": name}
		one := int32(1)
		set.Broker = &appsv1.Deployment{
			TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
			ObjectMeta: meta(name),
			Spec: appsv1.DeploymentSpec{
				Replicas: &one,
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{
						Name: "broker", Image: o.Image,
						Command: []string{Binary, "broker", "--listen", fmt.Sprintf("tcp://0.0.0.0:%d", BrokerPort)},
						Ports:   []corev1.ContainerPort{{Name: "mqtt", ContainerPort: BrokerPort}},
						ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
							TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(BrokerPort)}}},
					}}},
				},
			},
		}
		set.Service = &corev1.Service{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
			ObjectMeta: meta(name),
			Spec: corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{
				Name: "mqtt", Port: BrokerPort, TargetPort: intstr.FromInt32(BrokerPort)}}},
		}
	}
	n := int32(o.Shards)
	indexed := batchv1.IndexedCompletion
	zero := int32(0)
	results := corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}
	if o.ResultsClaim != "" {
		results = corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: o.ResultsClaim}}
	}
	args := []string{"simulate", "--profile", ProfileDir + "/" + ProfileFile, "--broker", broker,
		"--shards", strconv.Itoa(o.Shards), "--run-id", o.RunID,
		"--results", ResultsDir + "/shard-{index}.json", "--progress", "plain"}
	set.Job = &batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: meta(o.Name + "-fleet"),
		Spec: batchv1.JobSpec{
			CompletionMode: &indexed,
			Completions:    &n,
			Parallelism:    &n,
			// A shard that fails is a result (its verdict), not a pod to retry.
			BackoffLimit: &zero,
			Template: corev1.PodTemplateSpec{
				Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					Containers: []corev1.Container{{
						Name: "shard", Image: o.Image,
						Command: []string{Binary},
						Args:    args,
						// Kubernetes sets JOB_COMPLETION_INDEX in Indexed Jobs;
						// naming it here keeps the contract visible.
						Env: []corev1.EnvVar{{Name: "JOB_COMPLETION_INDEX", ValueFrom: &corev1.EnvVarSource{
							FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}}},
						Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
							corev1.ResourceCPU: resource.MustParse(o.CPU), corev1.ResourceMemory: resource.MustParse(o.Memory)}},
						VolumeMounts: []corev1.VolumeMount{
							{Name: "profile", MountPath: ProfileDir, ReadOnly: true},
							{Name: "results", MountPath: ResultsDir},
						},
					}},
					Volumes: []corev1.Volume{
						{Name: "profile", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
							LocalObjectReference: corev1.LocalObjectReference{Name: set.ConfigMap.Name}}}},
						{Name: "results", VolumeSource: results},
					},
				},
			},
		},
	}
	return set, nil
}

// Objects lists the set's objects in apply order.
func (s *Set) Objects() []any {
	out := []any{s.ConfigMap}
	if s.Broker != nil {
		out = append(out, s.Broker, s.Service)
	}
	return append(out, s.Job)
}

// YAML renders the objects as one multi-document YAML stream.
func (s *Set) YAML() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("# Generated by `mqttfleet shards manifests` from the k8s.io/api types; apply with kubectl apply -f.\n")
	for i, obj := range s.Objects() {
		y, err := yaml.Marshal(obj)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			b.WriteString("---\n")
		}
		b.Write(y)
	}
	return b.Bytes(), nil
}
