#!/bin/sh
# Run at template build time (see Dockerfile): fail the build unless the extractor runs in this image and sees
# every tool and language pack it needs, in the environment the E2B backend gives it at run time.
#
# Usage: check-template.sh [EXTRACTOR]   (default /usr/local/bin/invoice-intake)
set -eu

EXTRACTOR=${1:-/usr/local/bin/invoice-intake}
# The environment of a run (src/sandbox/e2b/mod.rs, EXTRACTOR_ENV): nothing from the image's ENV or a login shell.
run() {
    env -i PATH=/usr/bin:/bin HOME=/tmp LANG=C.UTF-8 OMP_THREAD_LIMIT=1 "$EXTRACTOR" "$@"
}

echo "== $EXTRACTOR --version"
run --version

echo "== $EXTRACTOR sandbox-probe"
probe=$(run sandbox-probe)
printf '%s\n' "$probe"

fail=0
# "no network" is not checked here: the build has network, the sandboxes are created without it.
for name in pdfinfo pdftotext pdftoppm pdfdetach tesseract "tesseract language eng" "tesseract language spa" "private /tmp"; do
    line=$(printf '%s\n' "$probe" | grep -F "\"name\":\"$name\"" || true)
    if [ -z "$line" ]; then
        echo "MISSING: the probe did not report \"$name\""
        fail=1
    elif ! printf '%s\n' "$line" | grep -qF '"ok":true'; then
        echo "FAILED: $line"
        fail=1
    fi
done

echo "== a tiny UBL invoice, read by sandbox-run"
sample=$(mktemp /tmp/template-check.XXXXXX)
cat > "$sample" <<'XML'
<?xml version="1.0" encoding="UTF-8"?>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2" xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2" xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
<cbc:ID>TEMPLATE-CHECK-1</cbc:ID>
<cbc:IssueDate>2025-01-01</cbc:IssueDate>
<cbc:DocumentCurrencyCode>EUR</cbc:DocumentCurrencyCode>
<cac:LegalMonetaryTotal><cbc:PayableAmount currencyID="EUR">1.00</cbc:PayableAmount></cac:LegalMonetaryTotal>
</Invoice>
XML
result=$(run sandbox-run --name=template-check.xml "$sample" || true)
rm -f "$sample"
printf '%s\n' "$result"
if ! printf '%s\n' "$result" | grep -qF '"invoice_number":"TEMPLATE-CHECK-1"'; then
    echo "FAILED: the extractor did not read the sample invoice"
    fail=1
fi

if [ "$fail" -ne 0 ]; then
    echo "template check FAILED: this image cannot read invoices; fix the Dockerfile before using the template" >&2
    exit 1
fi
echo "template check passed"
