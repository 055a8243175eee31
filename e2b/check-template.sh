#!/bin/sh
# Run at template build time (see Dockerfile): fail the build unless the extractor runs in this image and every
# tool reads its sample document in every OCR language, in the environment the E2B backend gives it at run time.
# It is the same `sandbox-probe --tools-only` that `invoice-intake doctor` runs inside a live sandbox: a text PDF
# through pdfinfo, pdftotext and pdfdetach, an image-only PDF through pdftoppm and tesseract, a PNG through
# tesseract. A tool that starts but cannot read (a missing library, a missing language pack) fails the build.
#
# Usage: check-template.sh [EXTRACTOR [LANGUAGE...]]   (default: /usr/local/bin/invoice-intake eng spa)
# The languages are sandbox.ocr_languages. To see what a broken image would do, PROBE_PATH replaces the PATH the
# extractor gets, and LD_LIBRARY_PATH and TESSDATA_PREFIX, when set, are passed on to it.
set -eu

EXTRACTOR=${1:-/usr/local/bin/invoice-intake}
[ $# -gt 0 ] && shift
LANGS=${*:-eng spa}

# The environment of a run (src/sandbox/e2b/mod.rs, EXTRACTOR_ENV): nothing from the image's ENV or a login shell.
run() {
    env -i PATH="${PROBE_PATH:-/usr/bin:/bin}" HOME=/tmp LANG=C.UTF-8 OMP_THREAD_LIMIT=1 \
        ${LD_LIBRARY_PATH:+LD_LIBRARY_PATH="$LD_LIBRARY_PATH"} ${TESSDATA_PREFIX:+TESSDATA_PREFIX="$TESSDATA_PREFIX"} \
        "$EXTRACTOR" "$@"
}

fail=0

echo "== $EXTRACTOR --version"
if ! run --version; then
    echo "FAILED: the extractor does not run in this image"
    fail=1
fi

echo "== $EXTRACTOR sandbox-probe --tools-only ($LANGS)"
lang_args=""
expected="pdfinfo pdftotext pdfdetach pdftoppm tesseract"
for lang in $LANGS; do
    lang_args="$lang_args --lang=$lang"
done
# shellcheck disable=SC2086 # one argument per language
probe=$(run sandbox-probe --tools-only $lang_args) || probe=""
printf '%s\n' "$probe"
if [ -z "$probe" ]; then
    echo "FAILED: sandbox-probe printed nothing"
    fail=1
fi
check_present() {
    if ! printf '%s\n' "$probe" | grep -qF "\"name\":\"$1\""; then
        echo "MISSING: the probe did not report \"$1\""
        fail=1
    fi
}
for name in $expected; do
    check_present "$name"
done
for lang in $LANGS; do
    check_present "tesseract language $lang"
    check_present "scanned PDF in $lang"
done
failed=$(printf '%s\n' "$probe" | grep -F '"ok":false' || true)
if [ -n "$failed" ]; then
    printf '%s\n' "$failed" | sed 's/^/FAILED: /'
    fail=1
fi

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
