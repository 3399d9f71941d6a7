// Package deploy holds graphhook's deployment files and the tests that
// check them; it has no Go API.
//
//   - ../Dockerfile: the receiver image, a static CGO_ENABLED=0 binary on
//     distroless static (default target), or with the OpenSSL backend on
//     Debian slim (--target openssl).
//   - systemd/: a hardened unit (graphhook-receiver.service) and the
//     receiver.yaml it reads.
//   - kubernetes/: a Deployment of two replicas with probes on /readyz and
//     /healthz, a Service, a PodDisruptionBudget, an Ingress exposing the two
//     notification paths over https, and a Secret for the clientState, keys
//     and NATS credentials, publishing to an external NATS cluster (kubectl
//     apply -k deploy/kubernetes).
//
// The tests build the receiver and check that the binary is static, that
// the unit passes systemd-analyze verify (when installed), and that every
// setting the files use is a flag the receiver has.
package deploy
