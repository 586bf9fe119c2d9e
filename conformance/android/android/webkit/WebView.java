package android.webkit;

import android.content.Context;
import android.view.View;

public class WebView extends View {

    public WebView(Context context) {
        super(context);
    }

    public void evaluateJavascript(String script, ValueCallback<String> resultCallback) {}

    public void loadUrl(String url) {}

    public String getUrl() {
        return null;
    }

    public void reload() {}

    public void clearHistory() {}
}
