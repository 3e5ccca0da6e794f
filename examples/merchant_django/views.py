"""Plain views: the middleware has checked the payment before they run and commits it after a response < 400."""

from django.http import HttpRequest, JsonResponse

from merchant_django.payments import image_count


def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def captions(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"caption": "a cat asleep on a keyboard"})


def images(request: HttpRequest) -> JsonResponse:
    prompt = request.GET.get("prompt", "a cat")
    if "forbidden" in prompt:
        return JsonResponse({"error": "prompt refused"}, status=422)  # >= 400: released, not charged
    return JsonResponse({"images": [f"<image {i + 1} of {prompt}>" for i in range(image_count(request))]})
