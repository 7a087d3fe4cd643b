// libcurl's headers, plus typed forms of its variadic curl_easy_setopt and curl_easy_getinfo, which Swift cannot
// call: one function per kind of argument.
#include <curl/curl.h>

typedef size_t (*provision_curl_data_callback)(char *data, size_t size, size_t count, void *context);
typedef int (*provision_curl_progress_callback)(void *context, curl_off_t download_total, curl_off_t download_now,
                                                curl_off_t upload_total, curl_off_t upload_now);

static inline CURLcode provision_curl_global_init(void) {
    return curl_global_init(CURL_GLOBAL_DEFAULT);
}

static inline CURLcode provision_curl_set_long(CURL *curl, CURLoption option, long value) {
    return curl_easy_setopt(curl, option, value);
}

static inline CURLcode provision_curl_set_size(CURL *curl, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(curl, option, value);
}

// curl copies string options (7.17+), so the Swift string may go away after the call.
static inline CURLcode provision_curl_set_string(CURL *curl, CURLoption option, const char *value) {
    return curl_easy_setopt(curl, option, value);
}

static inline CURLcode provision_curl_set_pointer(CURL *curl, CURLoption option, void *value) {
    return curl_easy_setopt(curl, option, value);
}

static inline CURLcode provision_curl_set_list(CURL *curl, CURLoption option, struct curl_slist *value) {
    return curl_easy_setopt(curl, option, value);
}

static inline CURLcode provision_curl_set_write_callback(CURL *curl, provision_curl_data_callback callback,
                                                         void *context) {
    CURLcode rc = curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, callback);
    return rc != CURLE_OK ? rc : curl_easy_setopt(curl, CURLOPT_WRITEDATA, context);
}

static inline CURLcode provision_curl_set_header_callback(CURL *curl, provision_curl_data_callback callback,
                                                          void *context) {
    CURLcode rc = curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, callback);
    return rc != CURLE_OK ? rc : curl_easy_setopt(curl, CURLOPT_HEADERDATA, context);
}

static inline CURLcode provision_curl_set_progress_callback(CURL *curl, provision_curl_progress_callback callback,
                                                            void *context) {
    CURLcode rc = curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, callback);
    if (rc == CURLE_OK) rc = curl_easy_setopt(curl, CURLOPT_XFERINFODATA, context);
    return rc != CURLE_OK ? rc : curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
}

static inline CURLcode provision_curl_get_long(CURL *curl, CURLINFO info, long *value) {
    return curl_easy_getinfo(curl, info, value);
}

static inline CURLcode provision_curl_get_size(CURL *curl, CURLINFO info, curl_off_t *value) {
    return curl_easy_getinfo(curl, info, value);
}
