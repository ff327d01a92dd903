#ifndef CHILL_CCURL_SHIM_H
#define CHILL_CCURL_SHIM_H
#include <curl/curl.h>

// curl_easy_setopt and curl_easy_getinfo are variadic, which Swift cannot call.
// These typed wrappers are all the project needs.
static inline CURLcode chill_setopt_long(CURL *h, CURLoption o, long v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode chill_setopt_off(CURL *h, CURLoption o, curl_off_t v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode chill_setopt_string(CURL *h, CURLoption o, const char *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode chill_setopt_pointer(CURL *h, CURLoption o, void *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode chill_setopt_slist(CURL *h, CURLoption o, struct curl_slist *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode chill_setopt_blob(CURL *h, CURLoption o, void *data, size_t len) {
    struct curl_blob blob = { data, len, CURL_BLOB_COPY };
    return curl_easy_setopt(h, o, &blob);
}
typedef size_t (*chill_write_cb)(char *ptr, size_t size, size_t nmemb, void *userdata);
typedef int (*chill_xferinfo_cb)(void *clientp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow);
static inline CURLcode chill_setopt_write_function(CURL *h, chill_write_cb f) { return curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, f); }
static inline CURLcode chill_setopt_header_function(CURL *h, chill_write_cb f) { return curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, f); }
static inline CURLcode chill_setopt_read_function(CURL *h, chill_write_cb f) { return curl_easy_setopt(h, CURLOPT_READFUNCTION, f); }
static inline CURLcode chill_setopt_xferinfo_function(CURL *h, chill_xferinfo_cb f) { return curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, f); }
static inline CURLcode chill_getinfo_long(CURL *h, CURLINFO i, long *v) { return curl_easy_getinfo(h, i, v); }
static inline CURLcode chill_getinfo_pointer(CURL *h, CURLINFO i, void **v) { return curl_easy_getinfo(h, i, v); }

// The multi interface: curl_multi_setopt is variadic too, and CURLMsg's result sits in a union.
static inline CURLMcode chill_multi_setopt_long(CURLM *m, CURLMoption o, long v) { return curl_multi_setopt(m, o, v); }
static inline CURLcode chill_msg_result(const CURLMsg *msg) { return msg->data.result; }
static inline int chill_msg_is_done(const CURLMsg *msg) { return msg->msg == CURLMSG_DONE; }
// The write callback's "pause me" answer is a macro Swift cannot import.
static inline size_t chill_writefunc_pause(void) { return CURL_WRITEFUNC_PAUSE; }
static inline CURLcode chill_unpause(CURL *h) { return curl_easy_pause(h, CURLPAUSE_CONT); }

// Names the calling thread (the multi driver). glibc declares pthread_setname_np only under _GNU_SOURCE.
#ifdef __linux__
#include <pthread.h>
extern int pthread_setname_np(pthread_t thread, const char *name);
static inline void chill_name_current_thread(const char *name) { pthread_setname_np(pthread_self(), name); }
#else
static inline void chill_name_current_thread(const char *name) { (void)name; }
#endif
#endif
