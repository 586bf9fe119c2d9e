package android.widget;

import android.content.Context;
import android.view.View;

public class TextView extends View {

    public TextView(Context context) {
        super(context);
    }

    public void setText(CharSequence text) {}

    public CharSequence getText() {
        return "";
    }

    public void setHint(CharSequence hint) {}

    public void addTextChangedListener(android.text.TextWatcher watcher) {}

    public void setSingleLine(boolean b) {}

    public void setAllCaps(boolean b) {}
}
