#!/usr/bin/env bash
# Validates the Kubernetes manifests in deploy/kubernetes against Kubernetes' own schemas,
# offline, with PyPI's kubernetes-validate (strict: unknown fields are errors). KEDA's objects
# (keda.yaml) have no schema there; crates/queue/tests/keda_query.rs checks their fields by hand
# and runs their queries against a real PostgreSQL. Also checks that kustomization.yaml lists
# every manifest.
#
# Without kubernetes-validate (scripts/test.sh installs it into .fresco/venv) this skips with a
# message, unless FRESCO_REQUIRE_KUBE_VALIDATE=1 (CI).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=deploy/kubernetes
validator=.fresco/venv/bin/kubernetes-validate
if [ ! -x "$validator" ]; then
  validator=$(command -v kubernetes-validate || true)
fi
if [ -z "$validator" ]; then
  if [ "${FRESCO_REQUIRE_KUBE_VALIDATE:-}" = "1" ]; then
    echo "validate-manifests: FRESCO_REQUIRE_KUBE_VALIDATE=1 but kubernetes-validate is not installed (pip install kubernetes-validate)" >&2
    exit 1
  fi
  echo "validate-manifests: SKIPPED: kubernetes-validate is not installed (scripts/test.sh installs it into .fresco/venv)" >&2
  exit 0
fi

core=()
for file in "$dir"/*.yaml; do
  case "$(basename "$file")" in
    keda.yaml | kustomization.yaml) ;;
    *) core+=("$file") ;;
  esac
  name=$(basename "$file")
  if [ "$name" != kustomization.yaml ] && ! grep -qx "  - $name" "$dir/kustomization.yaml"; then
    echo "validate-manifests: $file is not listed in $dir/kustomization.yaml" >&2
    exit 1
  fi
done
# --strict rejects fields the schema does not know; every document must match a schema.
if ! out=$("$validator" --strict "${core[@]}" 2>&1); then
  echo "$out" >&2
  echo "validate-manifests: FAILED: the manifests above do not match Kubernetes' schemas" >&2
  exit 1
fi
if grep -q "Couldn't find schema" <<<"$out"; then
  echo "$out" >&2
  echo "validate-manifests: FAILED: a core manifest has a kind with no Kubernetes schema" >&2
  exit 1
fi
count=$(grep -c "passed for resource" <<<"$out" || true)
echo "validate-manifests: $count Kubernetes objects in ${#core[@]} files match Kubernetes' schemas (kubernetes-validate --strict, its default Kubernetes version)"
