<!DOCTYPE html>
<html lang="en">
<head>
    <meta charset="utf-8">
    <title>deployfile example</title>
</head>
<body>
<h1>deployfile Laravel example</h1>
<pre>
release: {{ $release }}
laravel: {{ app()->version() }}
env: {{ app()->environment() }}
</pre>
</body>
</html>
