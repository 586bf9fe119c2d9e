package com.getcapacitor;

import org.json.JSONException;
import org.json.JSONObject;

// Capacitor's JSObject is a JSONObject whose put does not throw.
public class JSObject extends JSONObject {

    public JSObject() {
        super();
    }

    public JSObject(String json) throws JSONException {
        super(json);
    }

    public JSObject(JSONObject obj, String[] names) throws JSONException {
        super(obj, names);
    }

    public static JSObject fromJSONObject(JSONObject obj) throws JSONException {
        java.util.Iterator<String> keys = obj.keys();
        java.util.List<String> names = new java.util.ArrayList<>();
        while (keys.hasNext()) names.add(keys.next());
        return new JSObject(obj, names.toArray(new String[0]));
    }

    public JSObject getJSObject(String name) {
        try {
            return getJSObject(name, null);
        } catch (JSONException ignored) {}
        return null;
    }

    public JSObject getJSObject(String name, JSObject defaultValue) throws JSONException {
        Object v = opt(name);
        if (v instanceof JSONObject) {
            return fromJSONObject((JSONObject) v);
        }
        return defaultValue;
    }

    @Override
    public String getString(String key) {
        return getString(key, null);
    }

    public String getString(String key, String defaultValue) {
        try {
            String value = super.getString(key);
            if (!super.isNull(key)) {
                return value;
            }
        } catch (JSONException ignored) {}
        return defaultValue;
    }

    @Override
    public JSObject put(String key, Object value) {
        try {
            super.put(key, value);
        } catch (JSONException ignored) {}
        return this;
    }

    @Override
    public JSObject put(String key, boolean value) {
        try {
            super.put(key, value);
        } catch (JSONException ignored) {}
        return this;
    }

    @Override
    public JSObject put(String key, int value) {
        try {
            super.put(key, value);
        } catch (JSONException ignored) {}
        return this;
    }

    @Override
    public JSObject put(String key, long value) {
        try {
            super.put(key, value);
        } catch (JSONException ignored) {}
        return this;
    }

    @Override
    public JSObject put(String key, double value) {
        try {
            super.put(key, value);
        } catch (JSONException ignored) {}
        return this;
    }
}
