package android.app;

import android.content.Context;
import android.content.DialogInterface;
import android.view.View;

// No screen on this device: a dialog cannot be built.
public class AlertDialog implements DialogInterface {

    public void show() {}

    public void dismiss() {}

    public void cancel() {}

    public boolean isShowing() {
        return false;
    }

    public void setCancelable(boolean b) {}

    public void setCanceledOnTouchOutside(boolean b) {}

    public void setOnDismissListener(DialogInterface.OnDismissListener l) {}

    public void setOnCancelListener(DialogInterface.OnCancelListener l) {}

    public void setMessage(CharSequence message) {}

    public static class Builder {

        public Builder(Context context) {
            throw new UnsupportedOperationException("no screen on this device");
        }

        public Builder setTitle(CharSequence title) {
            return this;
        }

        public Builder setMessage(CharSequence message) {
            return this;
        }

        public Builder setView(View view) {
            return this;
        }

        public Builder setCancelable(boolean b) {
            return this;
        }

        public Builder setPositiveButton(CharSequence text, DialogInterface.OnClickListener l) {
            return this;
        }

        public Builder setNegativeButton(CharSequence text, DialogInterface.OnClickListener l) {
            return this;
        }

        public Builder setNeutralButton(CharSequence text, DialogInterface.OnClickListener l) {
            return this;
        }

        public Builder setOnDismissListener(DialogInterface.OnDismissListener l) {
            return this;
        }

        public Builder setOnCancelListener(DialogInterface.OnCancelListener l) {
            return this;
        }

        public AlertDialog create() {
            return new AlertDialog();
        }

        public AlertDialog show() {
            return new AlertDialog();
        }
    }
}
