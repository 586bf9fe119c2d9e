package com.getcapacitor;

import android.app.Activity;
import android.content.Context;
import android.content.Intent;

// Capacitor's plugin base: the bridge gives the context, the activity and
// the plugin's configuration; notifyListeners hands events to the bridge.
public class Plugin {

    protected Bridge bridge;
    private String pluginId;

    public void setBridge(Bridge bridge) {
        this.bridge = bridge;
    }

    public void setPluginId(String pluginId) {
        this.pluginId = pluginId;
    }

    public void load() {}

    public Bridge getBridge() {
        return bridge;
    }

    public Context getContext() {
        return bridge.getContext();
    }

    public Activity getActivity() {
        return bridge.getActivity();
    }

    public PluginConfig getConfig() {
        return bridge.getConfig().getPluginConfiguration(pluginId);
    }

    protected void notifyListeners(String eventName, JSObject data, boolean retainUntilConsumed) {
        bridge.notifyListeners(pluginId, eventName, data, retainUntilConsumed);
    }

    protected void notifyListeners(String eventName, JSObject data) {
        notifyListeners(eventName, data, false);
    }

    protected void handleOnNewIntent(Intent intent) {}

    protected void handleOnStart() {}

    protected void handleOnStop() {}

    protected void handleOnResume() {}

    protected void handleOnPause() {}

    protected void handleOnDestroy() {}

    protected void handleOnActivityResult(int requestCode, int resultCode, Intent data) {}
}
