"""How views read their arguments: webargs' Flask parser, with repeated query keys made safe
and JSON bodies read by orjson, and the Blueprint every resource uses."""

import flask_smorest
from flask_smorest import abort
from marshmallow import missing
from webargs.flaskparser import FlaskParser, is_json_request

from .jsonbody import WHOLE_BODY, BadJSON, loads


class ArgumentParser(FlaskParser):
    """webargs' parser; a query key given twice is merged or refused, never half read.

    A list parameter (a :class:`schemas.common.CommaList`) takes every value of a repeated key,
    as webargs gives it to fields with ``is_multiple``; any other parameter given twice is a 400
    naming it, where webargs would keep the first value and drop the others.

    A JSON body is read by :func:`api.jsonbody.loads`: too deep, not JSON or holding a lone
    surrogate, it is a problem naming the body or the field, never a RecursionError or a
    string no database can store.
    """

    def load_json(self, req, schema):
        if not is_json_request(req):
            return missing
        raw = req.get_data(cache=True)
        if not raw.strip():  # every JSON body of the API is an object: an empty one says {}
            message = "The body is empty: send a JSON object."
            abort(400, message=message, errors={WHOLE_BODY: [message]})
        try:
            return loads(raw, unique_names=True)
        except BadJSON as error:
            abort(error.status, message=error.message, errors={error.field: [error.message]})

    def load_querystring(self, req, schema):
        args = super().load_querystring(req, schema)
        known = {field.data_key or name for name, field in schema.fields.items()}
        repeated = sorted(
            key
            for key, values in req.args.lists()
            if len(values) > 1 and key in known and key not in args.multiple_keys
        )
        if repeated:
            message = "Give this parameter once."
            abort(
                400,
                message=f"Repeated query parameter: {', '.join(repeated)}.",
                errors={key: [message] for key in repeated},
            )
        return args


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's Blueprint, parsing arguments with :class:`ArgumentParser`."""

    ARGUMENTS_PARSER = ArgumentParser()
