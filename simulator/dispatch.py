"""Flask 3.1's dispatch of one request: which hooks run, in which order, with what status.

Read from ``flask/app.py`` and ``flask/ctx.py`` (Flask 3.1)::

    wsgi_app(environ, start_response)
      ctx.push()                       app context, request context, session, then
                                       match_request(): a routing error (404, 405) is
                                       only stored on the request
      full_dispatch_request()
        preprocess_request()           before_request functions; the first that returns
                                       a value ends it, and that value is the response
        dispatch_request()             raises the stored routing error, or calls the view
        except Exception:
          handle_user_exception(e)     an HTTPException (abort, routing) goes to
                                       handle_http_exception: the errorhandler for its
                                       code, else the exception itself is the response;
                                       another exception: the errorhandler for its class,
                                       else it is raised again
        finalize_request(rv)           make_response, process_response: after_request
      except Exception as e:           (raised again above)
        handle_exception(e)            logs it; InternalServerError; errorhandler(500) if
                                       registered; finalize_request(..., from_error_handler=
                                       True): after_request runs on the 500 too
      response(environ, start_response)
      finally: ctx.pop(error)          teardown_request, teardown_appcontext: ``error`` is
                                       the exception only if it reached wsgi_app
                                       (unhandled); a handled one gives them None

So ``after_request`` runs on every path that returns a response, the view is skipped
when a ``before_request`` returns one or the URL does not match, and teardown always runs.
:func:`dispatch` turns an endpoint's segments (:mod:`.endpoints`) into that order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: The Flask stages from the request context's push to its pop (see ``trace.STAGES``).
HOOKS = ("context", "match", "before_request", "view", "error", "after_request", "teardown")


@dataclass(frozen=True)
class Dispatch:
    """What Flask does with one endpoint's requests.

    ``before``: segments run inside ``before_request``; ``view``: the view's segments, or
    None when the view does not run; ``stages``: the hooks in the order they run, from the
    context push to teardown; ``status``: the response's status; ``handler``: whether a
    registered ``errorhandler`` runs; ``teardown_exc``: whether teardown receives the
    exception; ``outcome``: one line saying which path it took ("" on the normal one).
    """

    before: tuple[dict[str, Any], ...]
    view: tuple[dict[str, Any], ...] | None
    stages: tuple[str, ...]
    status: int
    handler: bool = False
    teardown_exc: bool = False
    outcome: str = ""


def dispatch(segments: list[dict[str, Any]], handles_500: bool = False) -> Dispatch:
    """How Flask 3.1 runs an endpoint made of ``segments``; ``handles_500``: the app has an
    ``errorhandler(500)`` (:func:`.endpoints.app_handles_500`)."""
    segs = tuple(segments)
    last = segs[-1] if segs else {}
    head = ("context", "match", "before_request")
    tail = ("after_request", "teardown")
    if "route" in last:
        code = 404 if last["route"] == "missing" else 405
        name = "NotFound" if code == 404 else "MethodNotAllowed"
        why = ("no URL rule matches the path" if code == 404
               else "the rule allows another method only")
        return Dispatch((), None, (*head, "error", *tail), code, outcome=(
            f"{why}: match_request stored {name}, before_request still ran, then "
            f"dispatch_request raised it and handle_http_exception made it the {code} "
            "response; teardown gets None"))
    if "short_circuit" in last:
        code = last["short_circuit"]
        return Dispatch(segs[:-1], None, (*head, *tail), code, outcome=(
            f"a before_request function returned a {code} response: preprocess_request "
            "stops there, the view is skipped, after_request still runs"))
    if "abort" in last:
        code = last["abort"]
        caught = code == 500 and handles_500
        by = "errorhandler(500) answers" if caught else f"the {code} exception is the response"
        return Dispatch((), segs[:-1], (*head, "view", "error", *tail), code, handler=caught,
                        outcome=(f"abort({code}) raised an HTTPException: "
                                 f"handle_http_exception: {by}; after_request runs, "
                                 "teardown gets None"))
    if "raise" in last:
        kind = last["raise"]
        stages = (*head, "view", "error", *tail)
        if kind == "unhandled" or kind == 500:
            caught = kind == 500 or handles_500
            by = "errorhandler(500) answers" if caught else "the default 500 page"
            return Dispatch((), segs[:-1], stages, 500, handler=caught, teardown_exc=True,
                            outcome=("the view raised an exception no handler catches: "
                                     "handle_user_exception raises it again, wsgi_app's "
                                     f"handle_exception logs it ({by}), after_request runs "
                                     "on the 500, teardown gets the exception"))
        return Dispatch((), segs[:-1], stages, int(kind), handler=True, outcome=(
            f"the view raised an exception with its own errorhandler: "
            f"handle_user_exception calls it, it answers {kind}; after_request runs, "
            "teardown gets None"))
    return Dispatch((), segs, (*head, "view", *tail), 200)
