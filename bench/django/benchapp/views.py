# The same exchanges as bench/upstream.mjs: GET /small answers bench/bodies.mjs SMALL; POST /post reads
# its body (ORDER_2K) and answers ITEMS_4K. The bodies come from bodies.json, which setup.sh writes from
# bodies.mjs, so both apps send the very same bytes.
import json
from pathlib import Path

from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

BODIES = json.loads((Path(__file__).resolve().parent.parent / 'bodies.json').read_text())
SMALL = BODIES['SMALL'].encode()
ITEMS_4K = BODIES['ITEMS_4K'].encode()


@require_GET
def small(request):
    return HttpResponse(SMALL, content_type='application/json')


@csrf_exempt
@require_POST
def post(request):
    request.body  # read the whole request body, as a view that parses it would
    return HttpResponse(ITEMS_4K, content_type='application/json')
