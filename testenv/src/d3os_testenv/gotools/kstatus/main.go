// Command kstatus prints kstatus' verdict for Kubernetes objects: the one Flux's health checks, kpt,
// cli-utils' apply-and-wait and Helm 4's --wait reach for a custom resource.
//
// It reads JSON from standard input: one object, or a List of them (`kubectl get -o json`), and prints
// one JSON line per object: {"kind", "namespace", "name", "status", "message"}, where status is one of
// InProgress, Failed, Current, Terminating, NotFound, Unknown, as sigs.k8s.io/cli-utils/pkg/kstatus/status
// computes it. The d3os tests use it to check the operator's status with the real library.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type verdict struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Status    string `json:"status"`
	Message   string `json:"message"`
}

func main() {
	raw, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(err)
	}
	var obj map[string]interface{}
	// integers as int64, as the API machinery decodes them (kstatus reads generations as int64)
	if err := utiljson.Unmarshal(raw, &obj); err != nil {
		fail(fmt.Errorf("standard input is not a JSON object: %w", err))
	}
	objects := []map[string]interface{}{obj}
	if items, ok := obj["items"].([]interface{}); ok {
		objects = objects[:0]
		for _, item := range items {
			if m, ok := item.(map[string]interface{}); ok {
				objects = append(objects, m)
			}
		}
	}
	out := json.NewEncoder(os.Stdout)
	for _, o := range objects {
		u := &unstructured.Unstructured{Object: o}
		res, err := status.Compute(u)
		if err != nil {
			fail(fmt.Errorf("%s/%s: %w", u.GetKind(), u.GetName(), err))
		}
		if err := out.Encode(verdict{u.GetKind(), u.GetNamespace(), u.GetName(), res.Status.String(), res.Message}); err != nil {
			fail(err)
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "kstatus:", err)
	os.Exit(2)
}
