package com.getcapacitor;

import org.json.JSONObject;

// The plugin's section of capacitor.config.json.
public class PluginConfig {

    private final JSONObject config;

    public PluginConfig(JSONObject config) {
        this.config = config == null ? new JSONObject() : config;
    }

    public String getString(String key) {
        return getString(key, null);
    }

    public String getString(String key, String defaultValue) {
        return config.has(key) && !config.isNull(key) ? config.optString(key, defaultValue) : defaultValue;
    }

    public boolean getBoolean(String key, boolean defaultValue) {
        return config.optBoolean(key, defaultValue);
    }

    public int getInt(String key, int defaultValue) {
        return config.optInt(key, defaultValue);
    }

    public JSONObject getConfigJSON() {
        return config;
    }
}
