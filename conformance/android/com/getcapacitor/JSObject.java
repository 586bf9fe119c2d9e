package com.getcapacitor;

import org.json.JSONException;
import org.json.JSONObject;

// Capacitor's JSObject is a JSONObject whose put does not throw.
public class JSObject extends JSONObject {

    @Override
    public JSObject put(String key, Object value) {
        try {
            super.put(key, value);
        } catch (JSONException ignored) {}
        return this;
    }
}
