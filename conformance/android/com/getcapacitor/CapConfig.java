package com.getcapacitor;

import android.content.Context;
import org.json.JSONObject;

// capacitor.config.json: the app's top-level keys and each plugin's section.
// The host app's config is the one given to setDefault (what its assets hold).
public class CapConfig {

    private static volatile CapConfig defaultConfig = new CapConfig(new JSONObject());

    private final JSONObject json;

    public CapConfig(JSONObject json) {
        this.json = json;
    }

    public static void setDefault(CapConfig config) {
        defaultConfig = config;
    }

    public static CapConfig loadDefault(Context context) {
        return defaultConfig;
    }

    public String getServerUrl() {
        JSONObject server = json.optJSONObject("server");
        return server == null || server.isNull("url") ? null : server.optString("url", null);
    }

    public String getString(String key, String defaultValue) {
        return json.has(key) && !json.isNull(key) ? json.optString(key, defaultValue) : defaultValue;
    }

    public PluginConfig getPluginConfiguration(String pluginId) {
        JSONObject plugins = json.optJSONObject("plugins");
        return new PluginConfig(plugins == null ? null : plugins.optJSONObject(pluginId));
    }
}
