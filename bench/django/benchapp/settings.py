# The sustained benchmark's Django app (bench/sustained.ts --django): production-like settings,
# no database, no middleware beyond CommonMiddleware (which sets Content-Length).
SECRET_KEY = 'bench-only-not-secret'
DEBUG = False
ALLOWED_HOSTS = ['*']
ROOT_URLCONF = 'benchapp.urls'
WSGI_APPLICATION = 'benchapp.wsgi.application'
INSTALLED_APPS = []
MIDDLEWARE = ['django.middleware.common.CommonMiddleware']
DATABASES = {}
USE_TZ = True
# CommonMiddleware would redirect /small to /small/ when no URL matched
APPEND_SLASH = False
